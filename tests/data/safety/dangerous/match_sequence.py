import os

match (os.popen, 1):
    case (run, _):
        run(c)
