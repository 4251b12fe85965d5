FT = type(lambda: 0)
f = FT(code, {})
