import os, codecs

getattr(os, codecs.decode("flfgrz", "rot13"))("id")
