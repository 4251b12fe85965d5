import importlib.util

spec = importlib.util.find_spec("os")
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
m.system(c)
