import os

match os:
    case x:
        x.system("id")
