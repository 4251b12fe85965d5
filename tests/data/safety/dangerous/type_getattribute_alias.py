import os

ga = type.__getattribute__
ga(os, "popen")(c)
