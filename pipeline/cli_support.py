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
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_text(value: Any) -> str:
    """A stranger's text (a feed's name, a server's error) safe to print in a terminal: runs of
    whitespace as one space, control characters as U+FFFD."""
    return _UNPRINTABLE.sub("\ufffd", " ".join(str(value).split())) if value is not None else ""


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
    """A header, then `columns` of each row: lists joined by "; ", datetimes in ISO 8601, None empty."""
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    for r in rows:
        out.writerow(["; ".join(map(str, v)) if isinstance(v, list) else
                      v.isoformat() if isinstance(v, datetime | date) else "" if v is None else v
                      for v in (r.get(c) for c in columns)])


def empty_result(fmt: str, message: str, columns: Sequence[str] = ()) -> NoReturn:
    """Nothing to show: a valid empty document for the machine formats (so scripts parse stdout
    either way), the reason on stderr, exit 1."""
    if fmt == "json":
        print_json([])
    elif fmt == "csv":
        print_csv([], columns)
    fail(message, EXIT_NOT_FOUND, prefix="")
