import subprocess

f = getattr(subprocess, name[::-1])
