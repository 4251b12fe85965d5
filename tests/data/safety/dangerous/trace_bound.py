import trace

t = trace.Trace(count=False)
t.runctx(s, {}, {})
