"""Change tracking: which orders changed since the last look ("Update by Schedule").

Two modes. `triggers` (like Magento's mview): a changelog table `koppla_sales_order_cl`
(`version_id` auto-increment, `entity_id` = the affected ORDER id) filled by AFTER INSERT/UPDATE/
DELETE triggers on the order tables; the connector reads rows and deletes exactly the rows it
processed (so a transaction that commits late with a lower version is never skipped). `poll`:
no writes to the shop at all; scans `updated_at`/`created_at` of the same tables since a cursor,
re-reading a small overlap (the feed's hashes drop what did not really change).

A row in the status trail (`sales_order_status_history`, and `sales_order_status_change_history`
where Magento has it) counts as a change of its order. Triggers go only on the tables the shop
database has. Polling reads the trail's `created_at` (Magento indexes it) but not the change
history's: that table has no index on its time, and every row of it comes with the order save
that stamps `sales_order.updated_at`, which polling already reads.

Customers are tracked the same way in a second changelog, `koppla_customer_cl` (`entity_id` =
the affected CUSTOMER id), filled by triggers on `customer_entity` and `customer_address_entity`;
both changelogs are installed and removed together. A deleted customer shows up in the changelog
through the DELETE trigger; polling cannot see a row that is gone, so the customer feed compares
the ids it knows with the ids that exist instead (`customer_feed.CustomersFeed.sweep`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, Table, column, delete, func, inspect, select, table, text

from koppla.connector import schema as t
from koppla.connector.schema import CUSTOMER_TRACKED_TABLES, TRACKED_TABLES

CHANGELOG = "koppla_sales_order_cl"
CUSTOMER_CHANGELOG = "koppla_customer_cl"
POLL_OVERLAP = timedelta(seconds=2)
_OPS = {"insert": "NEW", "update": "NEW", "delete": "OLD"}


@dataclass(frozen=True, slots=True)
class Changelog:
    """One trigger-filled changelog: its table, the tables it watches and what it records."""

    name: str
    tables: dict[str, str]
    what: str


ORDER_LOG = Changelog(CHANGELOG, TRACKED_TABLES, "orders touched")
CUSTOMER_LOG = Changelog(CUSTOMER_CHANGELOG, CUSTOMER_TRACKED_TABLES, "customers touched")
CHANGELOGS = (ORDER_LOG, CUSTOMER_LOG)


@dataclass(frozen=True, slots=True)
class Changes:
    """Orders touched since the last look, and what to remember once they are processed.

    `more` says the tracker stopped at its batch limit: look again without waiting.
    """

    order_ids: list[int]
    cursor: str
    versions: tuple[int, ...] = ()
    more: bool = False


class ChangeTracker(Protocol):
    """A way to learn which orders changed."""

    cursor_name: str

    def fetch(self, cursor: str | None) -> Changes:
        """Orders changed since `cursor` (None: since the tracker began)."""

    def ack(self, changes: Changes) -> None:
        """Forget changes that were processed and committed."""


def _trigger_name(table_name: str, op: str) -> str:
    return f"koppla_trg_{table_name}_after_{op}"


def trigger_ddl(dialect: str, present: Collection[str] | None = None) -> list[str]:
    """The statements creating both changelog tables and their triggers (`mysql` or `sqlite`),
    the triggers only on the tables in `present` (None: on every tracked table)."""
    return [statement for log in CHANGELOGS for statement in _log_ddl(log, dialect, present)]


def _log_ddl(log: Changelog, dialect: str, present: Collection[str] | None) -> list[str]:
    statements: list[str] = []
    if dialect == "sqlite":
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {log.name} (version_id INTEGER PRIMARY KEY "
            "AUTOINCREMENT, entity_id INTEGER NOT NULL)"
        )
    else:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {log.name} (version_id INT UNSIGNED NOT NULL "
            "AUTO_INCREMENT PRIMARY KEY, entity_id INT UNSIGNED NOT NULL DEFAULT 0) ENGINE=InnoDB "
            f"COMMENT='Koppla connector changelog: {log.what}'"
        )
    for table_name, col in log.tables.items():
        if present is not None and table_name not in present:
            continue
        for op, row in _OPS.items():
            name = _trigger_name(table_name, op)
            insert = f"INSERT INTO {log.name} (entity_id) VALUES ({row}.{col})"
            if dialect == "sqlite":
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {op.upper()} ON {table_name} "
                    f"BEGIN {insert}; END"
                )
            else:
                statements.append(f"DROP TRIGGER IF EXISTS {name}")
                statements.append(
                    f"CREATE TRIGGER {name} AFTER {op.upper()} ON {table_name} "
                    f"FOR EACH ROW {insert}"
                )
    return statements


def drop_ddl(dialect: str) -> list[str]:
    """The statements removing every object `trigger_ddl` creates."""
    drops = [
        f"DROP TRIGGER IF EXISTS {_trigger_name(name, op)}"
        for log in CHANGELOGS
        for name in log.tables
        for op in _OPS
    ]
    return [*drops, *(f"DROP TABLE IF EXISTS {log.name}" for log in CHANGELOGS)]


def _dialect(engine: Engine) -> str:
    return "sqlite" if engine.dialect.name == "sqlite" else "mysql"


def install_triggers(engine: Engine) -> int:
    """Create (or re-create) the changelog table and triggers; return the statement count."""
    statements = trigger_ddl(_dialect(engine), set(inspect(engine).get_table_names()))
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    return len(statements)


def uninstall_triggers(engine: Engine) -> None:
    """Remove the changelog table and triggers."""
    with engine.begin() as conn:
        for statement in drop_ddl(_dialect(engine)):
            conn.execute(text(statement))


def triggers_installed(engine: Engine, log: Changelog = ORDER_LOG) -> bool:
    """True when the changelog table of `log` (default: the orders') exists."""
    return bool(inspect(engine).has_table(log.name))


class TriggerChanges:
    """Reads one trigger-filled changelog (default: the orders')."""

    def __init__(
        self,
        engine: Engine,
        limit: int = 5000,
        log: Changelog = ORDER_LOG,
        cursor_name: str = "changelog_version",
    ) -> None:
        self._engine = engine
        self._limit = limit
        self._cl = table(log.name, column("version_id"), column("entity_id"))
        self.cursor_name = cursor_name

    def fetch(self, cursor: str | None) -> Changes:
        """The oldest unprocessed changelog rows (any version: late commits are included)."""
        cl = self._cl
        query = select(cl.c.version_id, cl.c.entity_id).order_by(cl.c.version_id).limit(self._limit)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        versions = tuple(int(r[0]) for r in rows)
        ids = list(dict.fromkeys(int(r[1]) for r in rows))
        last = max(versions, default=int(cursor or 0))
        more = len(versions) >= self._limit
        return Changes(ids, str(max(last, int(cursor or 0))), versions, more)

    def ack(self, changes: Changes) -> None:
        """Delete the processed changelog rows."""
        versions = list(changes.versions)
        with self._engine.begin() as conn:
            for start in range(0, len(versions), 1000):
                chunk = versions[start : start + 1000]
                conn.execute(delete(self._cl).where(self._cl.c.version_id.in_(chunk)))


Polled = tuple[tuple[Table, str, str], ...]

ORDER_POLLED: Polled = (
    (t.sales_order, "entity_id", "updated_at"),
    (t.sales_invoice, "order_id", "updated_at"),
    (t.sales_shipment, "order_id", "updated_at"),
    (t.sales_shipment_track, "order_id", "updated_at"),
    (t.sales_creditmemo, "order_id", "updated_at"),
    (t.sales_payment_transaction, "order_id", "created_at"),
    (t.sales_order_status_history, "parent_id", "created_at"),
)
"""Each order table polled: the table, the column holding the order id, the time stamp (a
table the shop database does not have is skipped)."""

CUSTOMER_POLLED: Polled = (
    (t.customer_entity, "entity_id", "updated_at"),
    (t.customer_address_entity, "parent_id", "updated_at"),
)
"""Each customer table polled, as `ORDER_POLLED`."""


class PollChanges:
    """Scans timestamps: no triggers, no writes to the shop database (default: orders)."""

    def __init__(
        self, engine: Engine, polled: Polled = ORDER_POLLED, cursor_name: str = "poll_timestamp"
    ) -> None:
        self._engine = engine
        self._polled = polled
        self._present: Polled | None = None
        self.cursor_name = cursor_name

    def _tables(self) -> Polled:
        """The polled tables the shop database has (looked up once)."""
        if self._present is None:
            names = set(inspect(self._engine).get_table_names())
            self._present = tuple(p for p in self._polled if p[0].name in names)
        return self._present

    def now(self) -> datetime:
        """The shop database's current time (UTC)."""
        with self._engine.connect() as conn:
            value = conn.execute(select(func.current_timestamp())).scalar_one()
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

    def fetch(self, cursor: str | None) -> Changes:
        """Orders with a row stamped at or after `cursor` minus a small overlap."""
        since = datetime.fromisoformat(cursor) - POLL_OVERLAP if cursor else datetime(1970, 1, 1)
        ids: dict[int, None] = {}
        newest = datetime.fromisoformat(cursor) if cursor else since
        with self._engine.connect() as conn:
            for tbl, id_col, ts_col in self._tables():
                query = select(tbl.c[id_col], tbl.c[ts_col]).where(tbl.c[ts_col] >= since)
                for oid, stamp in conn.execute(query):
                    if oid is None:
                        continue
                    ids[int(oid)] = None
                    if isinstance(stamp, datetime) and stamp.replace(tzinfo=None) > newest:
                        newest = stamp.replace(tzinfo=None)
        return Changes(list(ids), newest.isoformat())

    def ack(self, changes: Changes) -> None:
        """Nothing to forget: the cursor is the state."""
