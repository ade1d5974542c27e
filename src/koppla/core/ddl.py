"""Creating SQLAlchemy tables when several processes may open the same database at once.

`MetaData.create_all` checks which tables exist, then creates the missing ones; two processes
doing that together both see a table missing and one of them fails with "already exists"
(SQLite, PostgreSQL, MariaDB alike). Trying again settles it: the loser now sees the table.
"""

from __future__ import annotations

import time

from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

ATTEMPTS = 5


def create_all(metadata: MetaData, engine: Engine) -> None:
    """Create the tables (and their indexes) of `metadata` that `engine`'s database lacks."""
    for attempt in range(ATTEMPTS):
        try:
            metadata.create_all(engine)
            return
        except DBAPIError as error:
            if attempt == ATTEMPTS - 1 or not _lost_a_race(error):
                raise
            time.sleep(0.05 * (attempt + 1))


def _lost_a_race(error: DBAPIError) -> bool:
    """Whether the error is another process having created the same object first."""
    text = str(error.orig).lower()
    return "already exists" in text or "duplicate" in text or "pg_type_typname" in text
