"""lama-video: remove objects from video with LaMa inpainting extended over time.

Public API::

    from lama_video import remove_object, RunConfig, Inpainter

Heavy modules (torch) load on first use of the names that need them, so importing the package is
cheap and has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lama_video._version import __version__
from lama_video.config import RunConfig, load_config
from lama_video.errors import (
    ConfigError,
    EncodeError,
    LamaVideoError,
    MaskError,
    VideoOpenError,
    WeightsError,
)

_LAZY = {
    "Box": ("lama_video.masks", "Box"),
    "remove_object": ("lama_video.pipeline", "remove_object"),
    "Inpainter": ("lama_video.engines.lama", "Inpainter"),
    "ClassicalEngine": ("lama_video.engines.classical", "ClassicalEngine"),
    "ExemplarEngine": ("lama_video.engines.exemplar", "ExemplarEngine"),
    "TemporalEngine": ("lama_video.temporal", "TemporalEngine"),
    "load_model": ("lama_video.model.weights", "load_model"),
    "batch": ("lama_video.batching", "batch"),
}

if TYPE_CHECKING:
    from lama_video.engines.classical import ClassicalEngine
    from lama_video.engines.exemplar import ExemplarEngine
    from lama_video.engines.lama import Inpainter
    from lama_video.masks import Box
    from lama_video.model.weights import load_model
    from lama_video.pipeline import remove_object
    from lama_video.temporal import TemporalEngine


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lama_video' has no attribute {name!r}")


__all__ = [
    "Box",
    "ClassicalEngine",
    "ConfigError",
    "EncodeError",
    "ExemplarEngine",
    "Inpainter",
    "LamaVideoError",
    "MaskError",
    "RunConfig",
    "TemporalEngine",
    "VideoOpenError",
    "WeightsError",
    "__version__",
    "batch",
    "load_config",
    "load_model",
    "remove_object",
]
