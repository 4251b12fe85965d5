from multiprocessing.connection import Connection

Connection.recv(c)
