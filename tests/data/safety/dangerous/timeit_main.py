import timeit

timeit.main(["-s", setup, stmt])
