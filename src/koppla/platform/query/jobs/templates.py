"""Query templates (Adobe's `/query-templates`): named SQL of an organization's sandbox, shared
by everyone in it, with `$name` parameters and their default values.

A template's SQL is checked when saved: with every parameter given its default (or NULL), it
must be one SELECT the guard admits, so a template never stores what could not run.
"""

from __future__ import annotations

from typing import Any

from koppla.core import codec, ids
from koppla.core.errors import InvalidInput
from koppla.core.sqlite import SqliteFile
from koppla.core.text import check_unicode
from koppla.platform.query.jobs.admit import admitted
from koppla.platform.query.jobs.listing import Listing, Rule, keyset_page
from koppla.platform.query.jobs.model import Template
from koppla.platform.query.jobs.params import check_params, placeholders, substitute

SCHEMA = """
CREATE TABLE IF NOT EXISTS query_templates (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, sandbox TEXT NOT NULL, name TEXT NOT NULL,
  sql TEXT NOT NULL, params TEXT NOT NULL, user_id TEXT NOT NULL, last_updated_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS query_templates_by_scope ON query_templates(org_id, sandbox);
"""

TEMPLATE_RULES: dict[str, Rule] = {
    "name": Rule("name", ("~",)),
    "userId": Rule("user_id", ("==",)),
    "lastUpdatedBy": Rule("last_updated_by", ("==",)),
}
"""The `property` filters of `GET /query-templates`, as Adobe documents them."""
TEMPLATE_ORDERS = {"created": "created_ms", "updated": "updated_ms"}
MAX_NAME_CHARS = 200
MAX_SQL_CHARS = 100_000
MAX_TEMPLATES = 1_000
"""Most templates one organization's sandbox keeps."""

_COLUMNS = (
    "id, org_id, sandbox, name, sql, params, user_id, last_updated_by, created_ms, updated_ms"
)


class TemplateStore:
    """The templates; safe to share between threads."""

    def __init__(self, file: SqliteFile) -> None:
        self._file = file

    def add(
        self,
        scope: tuple[str, str],
        user: str,
        name: str,
        sql: str,
        params: dict[str, Any],
        now_ms: int,
    ) -> Template:
        """Save a new template; `InvalidInput` naming the field when one breaks a rule."""
        name, sql, params = _checked(name, sql, params)
        template = Template(ids.new_uuid(), *scope, name, sql, params, user, user, now_ms, now_ms)
        with self._file.transaction() as db:
            (count,) = db.execute(
                "SELECT count(*) FROM query_templates WHERE org_id=? AND sandbox=?", scope
            ).fetchone()
            if count >= MAX_TEMPLATES:
                message = f"at most {MAX_TEMPLATES} query templates; delete one first"
                raise InvalidInput(message, field="name")
            db.execute(
                f"INSERT INTO query_templates ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                _row(template),
            )
        return template

    def get(self, scope: tuple[str, str], template_id: str) -> Template | None:
        """The template `template_id` of `scope`, else None."""
        row = self._file.one(
            f"SELECT {_COLUMNS} FROM query_templates WHERE id=? AND org_id=? AND sandbox=?",
            (template_id, *scope),
        )
        return None if row is None else _template(row)

    def update(
        self,
        scope: tuple[str, str],
        template_id: str,
        user: str,
        name: str,
        sql: str,
        params: dict[str, Any],
        now_ms: int,
    ) -> Template | None:
        """Replace the name, SQL and parameters of a template; None when `scope` has none."""
        name, sql, params = _checked(name, sql, params)
        with self._file.transaction() as db:
            changed = db.execute(
                "UPDATE query_templates SET name=?, sql=?, params=?, last_updated_by=?, "
                "updated_ms=? WHERE id=? AND org_id=? AND sandbox=?",
                (name, sql, codec.dumps(params).decode(), user, now_ms, template_id, *scope),
            )
            if changed.rowcount == 0:
                return None
        return self.get(scope, template_id)

    def delete(self, scope: tuple[str, str], template_id: str) -> bool:
        """Delete a template; False when `scope` has none by that id."""
        with self._file.transaction() as db:
            gone = db.execute(
                "DELETE FROM query_templates WHERE id=? AND org_id=? AND sandbox=?",
                (template_id, *scope),
            )
            return gone.rowcount > 0

    def count(self, scope: tuple[str, str], listing: Listing) -> int:
        """How many templates of `scope` pass the listing's filters."""
        where = listing.where
        row = self._file.one(
            f"SELECT count(*) FROM query_templates WHERE org_id=? AND sandbox=? AND ({where.sql})",
            (*scope, *where.args),
        )
        return 0 if row is None else int(row[0])

    def page(self, scope: tuple[str, str], listing: Listing) -> tuple[list[Template], int | None]:
        """One page of `scope`'s templates, and the order key that starts the next."""
        select = f"SELECT {_COLUMNS} FROM query_templates WHERE org_id=? AND sandbox=?"
        by_created = listing.order_column == "created_ms"

        def key(template: Template) -> int:
            return template.created_ms if by_created else template.updated_ms

        return keyset_page(self._file, select, scope, listing, _template, key)


def _checked(name: str, sql: str, params: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    name = check_unicode(name, "name").strip()
    if not name or len(name) > MAX_NAME_CHARS:
        message = f"name is required, at most {MAX_NAME_CHARS} characters"
        raise InvalidInput(message, field="name")
    check_unicode(sql, "sql")
    if not sql.strip() or len(sql) > MAX_SQL_CHARS:
        raise InvalidInput(f"sql is required, at most {MAX_SQL_CHARS} characters", field="sql")
    params = check_params(params)
    unused = sorted(set(params) - set(placeholders(sql)))
    if unused:
        message = f"queryParameters: parameter {unused[0]!r} is not used in the SQL"
        raise InvalidInput(message, field="queryParameters")
    trial = {key: params.get(key) for key in placeholders(sql)}
    admitted(substitute(sql, trial))
    return name, sql, params


def _row(template: Template) -> tuple[object, ...]:
    return (
        template.id,
        template.org_id,
        template.sandbox,
        template.name,
        template.sql,
        codec.dumps(template.params).decode(),
        template.user_id,
        template.last_updated_by,
        template.created_ms,
        template.updated_ms,
    )


def _template(row: tuple[Any, ...]) -> Template:
    return Template(
        row[0], row[1], row[2], row[3], row[4], codec.loads(row[5]), row[6], row[7], row[8], row[9]
    )
