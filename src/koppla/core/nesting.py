"""How deeply a parsed JSON value nests, measured without recursion.

orjson reads 1024 levels but writes only 254, so a body the edge acknowledges must nest far less
than that, or a later stage fails on it. XDM's deepest path is much shallower than the limit.
"""

from __future__ import annotations

import re
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


_STRUCTURE = b'{}[]"'
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
_STRING = re.compile(rb'"[^"]*"')


def json_deeper_than(text: bytes, limit: int) -> bool:
    """True when the valid JSON `text` nests more than `limit` levels of objects and arrays.

    The same answer as `deeper_than(parse(text), limit)`, computed with bytes operations that
    run at C speed (the edge checks every request with it): JSON cannot nest deeper than it has
    opening brackets, which settles most single-event requests at once. Otherwise escapes are
    dropped, everything but brackets and quotes is deleted, strings (with any brackets inside
    them) are removed, and the bracket skeleton that is left is peeled one level per pass:
    every innermost `{}` or `[]` goes at once. `text` must be valid JSON (parse it first).
    """
    if text.count(b"{") + text.count(b"[") <= limit:
        return False
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = text.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:
        skeleton = _STRING.sub(b"", skeleton)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"{}", b".").replace(b"[]", b".").replace(b".", b"")
    return bool(skeleton)


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
