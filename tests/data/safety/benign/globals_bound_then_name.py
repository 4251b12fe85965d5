import sys


def f(globals=None):
    glob = globals or sys._getframe(1).f_globals
    name = glob and glob.get("__name__") or "unknown"
    return name
