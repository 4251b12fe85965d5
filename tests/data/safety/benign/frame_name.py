import sys

name = sys._getframe(1).f_globals["__name__"]
