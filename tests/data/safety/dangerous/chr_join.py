import builtins

getattr(builtins, "".join(chr(c) for c in codes))(s)
