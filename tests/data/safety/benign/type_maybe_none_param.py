def f(x=None):
    return type(x).__bases__
