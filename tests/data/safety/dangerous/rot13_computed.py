import os, codecs

getattr(os, codecs.encode(x, "rot_13"))
