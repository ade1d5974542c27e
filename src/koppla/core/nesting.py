"""How deeply a parsed JSON value nests, measured without recursion.

orjson reads 1024 levels but writes only 254, so a body the edge acknowledges must nest far less
than that, or a later stage fails on it. XDM's deepest path is much shallower than the limit.
"""

from __future__ import annotations

from typing import Any


def deeper_than(value: Any, limit: int) -> bool:
    """True when `value` nests more than `limit` levels of objects and arrays.

    `value` is parsed JSON (plain dicts and lists). A scalar has depth 0, `{}` and `[]` depth 1,
    `{"a": [1]}` depth 2. Iterative, so any depth is measured safely; it stops at the first
    container past the limit. This runs on every edge request, hence the exact type tests.
    """
    if type(value) is not dict and type(value) is not list:
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return True
        depth += 1
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, depth))
    return False


def json_deeper_than(text: bytes, value: Any, limit: int) -> bool:
    """`deeper_than(value, limit)` for `value` parsed from the JSON `text`, mostly without a walk.

    JSON cannot nest deeper than it has opening brackets, and counting them in the text runs at
    C speed: a typical single-event request has far fewer than the limit, so only bigger bodies
    pay for the walk.
    """
    if text.count(b"{") + text.count(b"[") <= limit:
        return False
    return deeper_than(value, limit)


def depth(value: Any) -> int:
    """How many levels of objects and arrays `value` nests (iteratively: any depth is safe)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if type(node) is dict:
            children: Any = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest
