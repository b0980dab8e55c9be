"""Typed errors: what a caller should do about a failure, not just what went wrong."""


class NewsroomError(Exception):
    """Base class for every error Newsroom raises on purpose."""


class ConfigError(NewsroomError):
    """A setting is missing or malformed; the message names the variable to fix."""


class TransientError(NewsroomError):
    """Worth retrying later: timeouts, 5xx, a lost database connection."""


class PermanentError(NewsroomError):
    """Retrying will not help for this item (404, not HTML, empty body)."""


class DatabaseUnavailable(TransientError):
    """The database could not be reached; the message names the setting in use."""


class MigrationError(NewsroomError):
    """A migration failed or a landed migration was edited; nothing was half-applied."""


class UserInputError(ConfigError):
    """A value the user typed is malformed (a date, a limit, an empty search); the message says what to type."""


class NotFound(NewsroomError):
    """What the user asked for does not exist: an unknown topic, entity, label or article id."""
