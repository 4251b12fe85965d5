def f(frame):
    return "__file__" in frame.f_globals
