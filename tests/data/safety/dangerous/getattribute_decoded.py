import os, base64

object.__getattribute__(os, base64.b32decode(x).decode())
