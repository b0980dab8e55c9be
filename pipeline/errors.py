"""Typed errors: what a caller should do about a failure, not just what went wrong.

One idiom: every error says whether retrying later may help (`transient`). A failure of one
item (a feed, a page, an article) is an `ItemFailed` with its `ErrorClass`: it is recorded on that
item and its batch goes on. Anything else that escapes a stage makes Airflow retry the task.
"""

from __future__ import annotations

from pipeline.states import ErrorClass


class NewsroomError(Exception):
    """Base class for every error Newsroom raises on purpose."""

    transient: bool = False  # whether retrying later may help


class ConfigError(NewsroomError):
    """A setting is missing or malformed; the message names the variable to fix."""


class TransientError(NewsroomError):
    """The machinery failed (the database went away, a deadlock): the whole task is retried."""

    transient = True


class ItemFailed(NewsroomError):
    """One feed, page or article failed, classified for the record and for the retry decision:
    recorded on that item (`error_class: message`), never raised past its batch."""

    def __init__(self, error_class: ErrorClass | str, message: str, *, transient: bool = False,
                 http_status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.error_class = ErrorClass(error_class)  # an unknown class is a bug: ValueError
        self.transient = transient
        self.http_status = http_status
        self.retry_after = retry_after


class DatabaseUnavailable(TransientError):
    """The database could not be reached; the message names the setting in use."""


class MigrationError(NewsroomError):
    """A migration failed or a landed migration was edited; nothing was half-applied."""


class UserInputError(ConfigError):
    """A value the user typed is malformed (a date, a limit, an empty search); the message says what to type."""


class NotFound(NewsroomError):
    """What the user asked for does not exist: an unknown topic, entity, label or article id."""
