"""Errors a user can fix: the command line prints them as one line, without a traceback."""


class AcaiError(Exception):
    """An error caused by the user's input; its message says how to fix it."""


class ConfigError(AcaiError, ValueError):
    """A config field is unknown, of the wrong type or out of range."""


class DataError(AcaiError):
    """A data source is missing, unreadable or empty."""


class WorkdirError(AcaiError):
    """A WORKDIR is missing, locked, or holds a run that does not match."""


class TrainingError(AcaiError):
    """Training cannot go on (for example a non-finite loss)."""
