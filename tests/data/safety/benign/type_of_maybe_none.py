x = None
if cond:
    x = obj
bases = type(x).__mro__
