"""The command server: a warm process that forks one child per ``proctor`` command.

A one-shot command spends most of its time before it does anything: the interpreter
starts, click and pydantic are imported, proctor's modules are imported and its models
built. With ``PROCTOR_SERVER=1`` the console script (:mod:`proctor.cmdserver.client`)
hands its command to a server that did all of that once: the server forks, the child
takes the caller's standard streams (passed as file descriptors), working folder,
environment, umask and resource limits, and runs :func:`proctor.cli.main` exactly as the
one-shot command would; its exit status goes back to the caller.

Each command runs in a fresh fork of a process that has only imported modules, so no
state passes from one command to the next. Whenever the server cannot stand in for a
one-shot command faithfully (a terminal on stdin, proctor or its libraries changed since
the server started, limits the server cannot give) the client runs the command itself.

Belongs here: the client, the server and what they share (where the socket lives, the
wire format). A face like :mod:`proctor.cli`: it runs the CLI and knows nothing else.
The client must stay cheap to import: no click, no pydantic, nothing of proctor's.
"""
