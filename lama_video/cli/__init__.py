"""Command-line interface (the only place typer, logging set-up and progress bars live).

Each sub-command lives in its own module and registers itself on :data:`app`; the modules are
imported when a command is looked up, not for ``lama-video --help``
(:data:`lama_video.cli._app.COMMANDS`).
"""

from __future__ import annotations

from lama_video.cli._app import app, main

__all__ = ["app", "main"]
