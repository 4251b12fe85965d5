from bdb import Bdb

b = Bdb()
b.runeval(expr)
