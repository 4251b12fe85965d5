import os, base64

n = base64.b64decode(blob).decode()
fn = getattr(os, n + "")
