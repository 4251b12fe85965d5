import os

[globals()[k] for k in ["os"]][0].system(c)
