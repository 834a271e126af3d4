"""Alembic migrations of the SIGMA schema (a package so that env.py ships in the wheel)."""
