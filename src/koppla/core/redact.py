"""Passwords out of text that may reach a log line, an exception or an HTTP reply.

Connection settings (`catalog_url`, `spool_url`) carry passwords; the errors of the libraries
that read them may quote them back. Every such text passes through `redact` first.
"""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)[^@\s'\"]*@")
_KEY_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the password of every URL (`scheme://user:PASSWORD@host`) and every
    `password=…` of a connection string replaced by `***`."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***@", text)
    return _KEY_PASSWORD.sub(lambda m: f"{m.group('head')}***", text)
