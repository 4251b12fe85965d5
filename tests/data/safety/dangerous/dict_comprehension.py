import builtins

{n: vars(builtins)[n] for n in ["eval"]}["eval"](s)
