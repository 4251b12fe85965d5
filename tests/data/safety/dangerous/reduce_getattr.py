import functools, os

functools.reduce(getattr, ["path", "os", "system"], os)("id")
