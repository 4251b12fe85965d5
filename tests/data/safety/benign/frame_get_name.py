def f(caller):
    return caller.f_globals.get("__name__", "")
