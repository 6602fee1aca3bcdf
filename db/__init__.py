"""The database side of digitflow.

``db.models`` holds the SQLAlchemy 2.0 models (batches, documents, pages,
fields, digits, corrections), ``db.engine`` the engine, session and migration
helpers, and ``db.queries`` every query the CLI and the worker run.  Query
functions take the session first and never commit: the caller owns the
transaction.
"""
