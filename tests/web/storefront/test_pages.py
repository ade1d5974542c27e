"""The demo shop's page rendering: warnings set in the banner, code spans escaped."""

from __future__ import annotations

from koppla.web.storefront.pages import code_spans


def test_code_spans_escape_the_text_and_mark_backquoted_parts_as_code() -> None:
    html = code_spans("set `public_edge_domain` <now> & `a<b`")
    assert html == "set <code>public_edge_domain</code> &lt;now&gt; &amp; <code>a&lt;b</code>"
