"""The database door: ``Database`` API, SQLite and PostgreSQL backends, ``open_database``, migrations."""
