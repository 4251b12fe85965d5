import builtins

match builtins:
    case object() as b:
        b.eval(s)
