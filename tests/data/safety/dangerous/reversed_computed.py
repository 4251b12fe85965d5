import os

getattr(os, "".join(reversed(x)))
