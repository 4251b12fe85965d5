"""The run log: one row per run in a database, never a commit per run.

``schema`` holds the tables the queries use and the ordered migrations that build them
(a ``proctor_schema`` table records which have been applied); ``store`` holds
:class:`RunLog`, the async SQLAlchemy engine over SQLite (WAL, under ``.git/proctor/``)
or PostgreSQL, with a synchronous face through ``run_async``; ``queries`` the
statistics, with percentiles computed in the database. Importing this package imports
no SQLAlchemy: ``store`` does, and only the commands that log load it.
"""
