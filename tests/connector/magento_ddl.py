"""Test-side translator: Magento's declarative `db_schema.xml` → MariaDB `CREATE TABLE` DDL.

Covers what the tables the connector reads use: integer types (unsigned, identity), decimal,
varchar, text/blob kinds, date/time types with CURRENT_TIMESTAMP defaults and ON UPDATE,
nullability, defaults, primary keys and unique keys. Foreign keys are left out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


@dataclass(frozen=True)
class MagentoColumn:
    """One column as Magento declares it."""

    name: str
    kind: str
    nullable: bool
    attrs: dict[str, str]


def load_tables(reference: Path) -> dict[str, ET.Element]:
    """Every `<table>` element of every module's db_schema.xml, by table name."""
    tables: dict[str, ET.Element] = {}
    for path in sorted((reference / "magento").glob("*/db_schema.xml")):
        for element in ET.parse(path).getroot().findall("table"):
            tables[element.get("name", "")] = element
    return tables


def columns(table: ET.Element) -> dict[str, MagentoColumn]:
    """The columns of a table element."""
    return {
        c.get("name", ""): MagentoColumn(
            c.get("name", ""), c.get(XSI_TYPE, ""), c.get("nullable") != "false", dict(c.attrib)
        )
        for c in table.findall("column")
    }


def _type(col: MagentoColumn) -> str:
    a = col.attrs
    unsigned = " UNSIGNED" if a.get("unsigned") == "true" else ""
    match col.kind:
        case "int" | "smallint" | "bigint" | "tinyint":
            return f"{col.kind.upper()}{unsigned}"
        case "decimal":
            return f"DECIMAL({a.get('precision', '10')},{a.get('scale', '0')}){unsigned}"
        case "float" | "double":
            return col.kind.upper()
        case "varchar":
            return f"VARCHAR({a.get('length', '255')})"
        case "boolean":
            return "BOOLEAN"
        case "text" | "mediumtext" | "longtext" | "blob" | "mediumblob" | "longblob":
            return col.kind.upper()
        case "timestamp" | "datetime" | "date":
            return col.kind.upper()
        case other:
            raise ValueError(f"unsupported column type {other!r} ({col.name})")


def column_ddl(col: MagentoColumn) -> str:
    """One column definition."""
    parts = [f"`{col.name}`", _type(col), "NULL" if col.nullable else "NOT NULL"]
    default = col.attrs.get("default")
    if col.attrs.get("identity") == "true":
        parts.append("AUTO_INCREMENT")
    elif default is not None:
        if default.upper() == "CURRENT_TIMESTAMP":
            parts.append("DEFAULT CURRENT_TIMESTAMP")
        elif col.kind in ("int", "smallint", "bigint", "tinyint", "decimal", "float", "boolean"):
            parts.append(f"DEFAULT {default}")
        else:
            parts.append("DEFAULT '" + default.replace("'", "''") + "'")
    elif col.kind == "timestamp" and col.nullable:
        parts.append("DEFAULT NULL")
    if col.attrs.get("on_update") == "true":
        parts.append("ON UPDATE CURRENT_TIMESTAMP")
    return " ".join(parts)


def create_table(table: ET.Element) -> str:
    """The `CREATE TABLE` statement of a table element (no foreign keys)."""
    lines = [column_ddl(c) for c in columns(table).values()]
    for constraint in table.findall("constraint"):
        kind = constraint.get(XSI_TYPE)
        names = ", ".join(f"`{c.get('name')}`" for c in constraint.findall("column"))
        if kind == "primary":
            lines.append(f"PRIMARY KEY ({names})")
        elif kind == "unique":
            lines.append(f"UNIQUE KEY `{constraint.get('referenceId')}` ({names})")
    body = ",\n  ".join(lines)
    return (
        f"CREATE TABLE `{table.get('name')}` (\n  {body}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    )
