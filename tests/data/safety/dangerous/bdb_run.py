import bdb

bdb.Bdb().run(code)
