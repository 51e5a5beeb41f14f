"""Command-line interface (the only place typer, logging set-up and progress bars live).

Each sub-command lives in its own module and registers itself on :data:`app`.
"""

from __future__ import annotations

from lama_video.cli._app import app, main

# Importing the command modules registers their commands on `app`.
from lama_video.cli import remove as _remove  # noqa: F401  # isort: skip
from lama_video.cli import image as _image  # noqa: F401  # isort: skip
from lama_video.cli import weights as _weights  # noqa: F401  # isort: skip
from lama_video.cli import finetune as _finetune  # noqa: F401  # isort: skip
from lama_video.cli import ui as _ui  # noqa: F401  # isort: skip
from lama_video.cli import mask as _mask  # noqa: F401  # isort: skip
from lama_video.cli import batch as _batch  # noqa: F401  # isort: skip

__all__ = ["app", "main"]
