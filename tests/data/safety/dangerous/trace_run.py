import trace

trace.Trace().run("import os")
