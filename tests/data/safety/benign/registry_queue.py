def subclasses(t):
    q = [t]
    while q:
        p = q.pop()
        for c in p.__subclasses__():
            q.append(c)
