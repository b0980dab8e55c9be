"""Text hygiene at the boundary: what a stranger's bytes may not carry into the database.

Postgres refuses NUL in text and psycopg cannot encode lone surrogates (a feed's `&#55296;`
or a page's broken escape). Everything that enters the database as text passes `safe_text`
(store.clean calls it), with a length cap where the field has one.
"""

from __future__ import annotations

import re

# NUL (Postgres refuses it in text) and lone surrogates (no UTF-8 encoding exists for them).
_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def safe_text(text: str | None, limit: int | None = None) -> str | None:
    """`text` without NUL and lone surrogates, cut to `limit` characters."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    text = _UNSAFE.sub("", text)
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


def truncate_utf8(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut at a character boundary (for indexed columns)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")
