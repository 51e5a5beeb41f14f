"""lama-video: remove objects from video with LaMa inpainting extended over time."""

from __future__ import annotations

__version__ = "0.1.0"
