"""Query services: the reads (and the few writes) the API makes, one module per area.

The API's routers validate requests, call these and shape the answer; the SQL lives here.
Functions take the async `Reader` (hot, read-only routes) or a `Session` (the rest, and every
write), as the router is given them. `Session` (and `SessionFactory`, what makes them) is named
here so the API can type the session it injects without importing SQLAlchemy.
"""

from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Session", "SessionFactory"]

SessionFactory = sessionmaker[Session]
