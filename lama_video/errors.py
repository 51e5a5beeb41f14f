"""Exception hierarchy of lama-video.

Every error a user can cause is a :class:`LamaVideoError`. Its message is one line that says what
was given, what was expected and what to do; the CLI prints it and exits with status 1.
"""

from __future__ import annotations


class LamaVideoError(Exception):
    """Base class of every error caused by the user's input or environment (exit status 1)."""


class ConfigError(LamaVideoError, ValueError):
    """A configuration key or value is unknown or out of range."""


class VideoOpenError(LamaVideoError):
    """An input video or image sequence cannot be opened or decoded."""


class MaskError(LamaVideoError):
    """A mask source is missing, unreadable or does not match the video."""


class WeightsError(LamaVideoError):
    """Model weights are missing, corrupt, untrusted or do not match the architecture."""


class EncodeError(LamaVideoError):
    """The output cannot be written (exists, equals the input, encoder refused the settings...)."""
