"""Alembic migrations of every table (``surveillance db upgrade``); ``tables`` names them."""
