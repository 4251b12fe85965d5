def f(fn):
    return fn.__globals__["__name__"]
