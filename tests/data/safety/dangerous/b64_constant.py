import os, base64

getattr(os, base64.b64decode("c3lzdGVt").decode())("id")
