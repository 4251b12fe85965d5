def g():
    pass


CT = type(g.__code__)
CT(*parts)
