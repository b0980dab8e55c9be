"""Helpers shared by the CLI modules (pipeline/cli.py imports cli_query, so they live here): typed
errors as one line and an exit code, and the machine formats (--format json|csv)."""

from __future__ import annotations

import csv
import functools
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import click

from pipeline.errors import ConfigError, NewsroomError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes, as grep has them: 1 = nothing found (or a runtime failure), 2 = bad input or settings.
EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2


def friendly(fn: F) -> F:
    """Turn Newsroom's typed errors into a one-line message and a non-zero exit, not a traceback
    for every command: ConfigError and UserInputError exit 2, every other NewsroomError
    (NotFound, DatabaseUnavailable, ...) exits 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        except NewsroomError as exc:
            fail(str(exc), EXIT_NOT_FOUND)

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int = EXIT_NOT_FOUND, *, prefix: str = "error: ") -> NoReturn:
    """One line on stderr, then exit with `code`."""
    click.echo(f"{prefix}{' '.join(message.split())}", err=True)
    sys.exit(code)


# Control characters (an ESC would start a terminal escape sequence) and the bidirectional
# overrides that make text display other than it reads.
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_text(value: Any) -> str:
    """A stranger's text (a feed's name, a server's error) safe to print in a terminal: runs of
    whitespace as one space, control characters as U+FFFD."""
    return UNPRINTABLE.sub("\ufffd", " ".join(str(value).split())) if value is not None else ""


# --- --format table|json|csv ----------------------------------------------------------------

FORMATS = click.Choice(["table", "json", "csv"], case_sensitive=False)


def plain(value: Any) -> Any:
    """JSON-able: datetimes as ISO 8601, decimals as floats."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, default=plain, ensure_ascii=False, indent=2))


def print_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A header, then `columns` of each row, each cell as csv_cell makes it."""
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    for r in rows:
        out.writerow([csv_cell(r.get(c)) for c in columns])


# An HTML tag (<b>, </b>, <script src=...>, <br/>), not a bare "<" as in "a < b".
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
# Control characters that are not whitespace (NUL, escape, DEL, C1) and bidirectional overrides, as
# in UNPRINTABLE; whitespace is collapsed instead.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")


def csv_cell(value: Any) -> Any:
    """One CSV cell: lists as "a; b", dates as ISO 8601, None as empty, and text on one line:
    HTML tags (a snippet's <b> marks included) and control characters removed, every run of
    whitespace (line breaks and tabs too) one space, and no text read as a spreadsheet formula."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(csv_cell(v)) for v in value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"  # as in json
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub("", value)
    while (untagged := _TAG.sub("", text)) != text:  # "<<b>script>" is a tag once <b> is gone
        text = untagged
    text = " ".join(text.split())
    # A stranger's title starting with = + - @ would be a formula in a spreadsheet
    # (=HYPERLINK(...)): quoted with ' as OWASP advises, so it shows as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def empty_result(fmt: str, message: str, columns: Sequence[str] = ()) -> NoReturn:
    """Nothing to show: a valid empty document for the machine formats (so scripts parse stdout
    either way), the reason on stderr, exit 1."""
    if fmt == "json":
        print_json([])
    elif fmt == "csv":
        print_csv([], columns)
    fail(message, EXIT_NOT_FOUND, prefix="")
