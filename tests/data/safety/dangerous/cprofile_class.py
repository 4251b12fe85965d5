import cProfile

cProfile.Profile().runctx(s, {}, {})
