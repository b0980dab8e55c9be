"""Helpers shared by the CLI modules (pipeline/cli.py imports cli_query, so they live here)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
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
