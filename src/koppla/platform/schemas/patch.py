"""JSON Patch (RFC 6902) `add`, `replace` and `remove`, as the Schema Registry's PATCH takes it.

Paths are JSON Pointers (`/allOf/-`, `/definitions/x/properties/_acme`); AEP also writes them
without the leading `/` (`description`), which is accepted. The document is copied; the copy
is changed and returned, or `InvalidInput` names the operation that cannot apply.
"""

from __future__ import annotations

import re
from typing import Any

from koppla.core import codec
from koppla.core.errors import InvalidInput

MAX_OPERATIONS = 500
OPERATIONS = ("add", "replace", "remove")
INDEX = re.compile(r"0|[1-9][0-9]{0,8}")
"""An array index in a path: ASCII digits without a leading zero (short enough for `int`)."""


def apply_patch(document: Any, operations: Any) -> Any:
    """`document` with `operations` applied in order (the original is left as it was)."""
    if not isinstance(operations, list) or not operations:
        raise InvalidInput("a JSON Patch body is a non-empty array of operations", field="body")
    if len(operations) > MAX_OPERATIONS:
        raise InvalidInput(f"at most {MAX_OPERATIONS} operations per request", field="body")
    changed = codec.loads(codec.dumps(document))
    for index, operation in enumerate(operations):
        changed = _apply(changed, operation, index)
    return changed


def pointer(path: str) -> list[str]:
    """The reference tokens of a JSON Pointer (a missing leading `/` is supplied)."""
    if path == "":
        return []
    if not path.startswith("/"):
        path = "/" + path
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _apply(document: Any, operation: Any, index: int) -> Any:
    where = f"[{index}]"
    if not isinstance(operation, dict) or operation.get("op") not in OPERATIONS:
        raise InvalidInput(
            f"operation {index}: `op` must be one of {', '.join(OPERATIONS)}", field=where + ".op"
        )
    path = operation.get("path")
    if not isinstance(path, str):
        raise InvalidInput(f"operation {index}: `path` must be a string", field=where + ".path")
    op = operation["op"]
    if op != "remove" and "value" not in operation:
        raise InvalidInput(f"operation {index}: `{op}` needs a `value`", field=where + ".value")
    tokens = pointer(path)
    if not tokens:
        if op == "remove":
            raise InvalidInput(
                f"operation {index}: the whole document cannot be removed", field=where + ".path"
            )
        return operation["value"]
    parent = _walk(document, tokens[:-1], index, path)
    _change(parent, tokens[-1], op, operation.get("value"), index, path)
    return document


def _walk(document: Any, tokens: list[str], index: int, path: str) -> Any:
    node = document
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and _index(token) and int(token) < len(node):
            node = node[int(token)]
        else:
            raise InvalidInput(
                f"operation {index}: {path!r} does not exist", field=f"[{index}].path"
            )
    return node


def _change(parent: Any, token: str, op: str, value: Any, index: int, path: str) -> None:
    missing = InvalidInput(f"operation {index}: {path!r} does not exist", field=f"[{index}].path")
    if isinstance(parent, dict):
        if op != "add" and token not in parent:
            raise missing
        if op == "remove":
            del parent[token]
        else:
            parent[token] = value
        return
    if not isinstance(parent, list):
        raise missing
    if op == "add" and token == "-":
        parent.append(value)
        return
    if not _index(token) or int(token) > len(parent) or (op != "add" and int(token) == len(parent)):
        raise missing
    position = int(token)
    if op == "add":
        parent.insert(position, value)
    elif op == "replace":
        parent[position] = value
    else:
        del parent[position]


def _index(token: str) -> bool:
    """True when `token` is an array index as JSON Pointer spells one: ASCII digits, no
    leading zero."""
    return INDEX.fullmatch(token) is not None
