import multiprocessing.connection as mc

c = mc.Client(addr)
