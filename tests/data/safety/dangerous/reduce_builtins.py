from functools import reduce
import builtins

reduce(getattr, ["eval"], builtins)(s)
