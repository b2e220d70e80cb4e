"""Markdown written by researchers (guidelines, consent texts), rendered to sanitised HTML.

`markdown` turns the text into HTML, raw HTML included; `nh3` then keeps only a safe allow-list of
tags, attributes and URL schemes, so a guideline can never run script in an annotator's browser.
"""
from __future__ import annotations

import markdown as markdown_lib
import nh3
from django.utils.safestring import SafeString, mark_safe

_EXTENSIONS = ["extra", "sane_lists"]
_URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> SafeString:
    """Markdown -> HTML that is safe to insert into a page unescaped."""
    html = markdown_lib.markdown(text or "", extensions=_EXTENSIONS, output_format="html")
    # nh3 is an allow-list sanitiser: anything not listed (script, on* handlers, javascript: URLs) goes.
    return mark_safe(nh3.clean(html, url_schemes=_URL_SCHEMES))  # noqa: S308
