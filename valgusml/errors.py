"""Typed errors. Every problem a user can cause surfaces as one of these, with a message naming it."""

from __future__ import annotations


class ValgusMLError(Exception):
    """Base class of every error valgusml raises on purpose."""


class InputError(ValgusMLError, ValueError):
    """Keypoints, metadata or a file that cannot be used as given."""


class FormatError(InputError):
    """A file whose format is unknown, corrupt or not what its reader expects."""


class ModelFileError(ValgusMLError):
    """An exported predictor folder that is missing, corrupt or of an unknown format version."""


class ConfigError(ValgusMLError, ValueError):
    """A configuration value that is invalid; raised before any work starts."""


class MissingDependencyError(ValgusMLError, ImportError):
    """An optional part (the `video` extra, matplotlib, ...) is needed but not installed; says how to get it."""


def stopped_by_ctrl_c(exc: BaseException) -> bool:
    """Ctrl-C, raised as such or as Lightning's `sys.exit(1)` from inside its own KeyboardInterrupt handler."""
    return isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, SystemExit) and isinstance(exc.__context__, KeyboardInterrupt))
