"""Image engines: fill the holes of a batch of frames, one frame at a time.

An image engine knows nothing about time. The temporal engine (``temporal.py``) and the per-frame
path of ``pipeline.py`` call one to hallucinate pixels that no neighbouring frame shows.

Contract of :meth:`ImageEngine.inpaint`: frames: (N, H, W, 3) uint8 RGB. masks: (N, H, W) bool, True
= hole. returns: (N, H, W, 3) uint8 RGB; pixels where the mask is False equal the input bit for bit.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from lama_video.config import InpaintConfig
from lama_video.errors import ConfigError, WeightsError

log = logging.getLogger(__name__)


@runtime_checkable
class ImageEngine(Protocol):
    """Anything that fills holes in a batch of frames (the module docstring states the contract)."""

    name: str

    def inpaint(self, frames: NDArray[np.uint8], masks: NDArray[np.bool_]) -> NDArray[np.uint8]:
        """Fill ``masks`` in ``frames``; outside-hole pixels are returned unchanged."""
        ...


def check_batch(frames: NDArray[np.uint8], masks: NDArray[np.bool_]) -> None:
    """Raise ValueError naming the contract when ``frames``/``masks`` do not follow it."""
    if (
        not isinstance(frames, np.ndarray)
        or frames.dtype != np.uint8
        or frames.ndim != 4
        or frames.shape[-1] != 3
    ):
        raise ValueError(
            "frames must be a (N, H, W, 3) uint8 RGB array, got "
            f"{getattr(frames, 'shape', None)} {getattr(frames, 'dtype', type(frames).__name__)}"
        )
    if (
        not isinstance(masks, np.ndarray)
        or masks.dtype != np.bool_
        or masks.shape != frames.shape[:3]
    ):
        raise ValueError(
            f"masks must be a (N, H, W) bool array matching frames {frames.shape[:3]}, got "
            f"{getattr(masks, 'shape', None)} {getattr(masks, 'dtype', type(masks).__name__)}"
        )


def make_image_engine(cfg: InpaintConfig) -> ImageEngine:
    """The image engine ``cfg.engine`` names.

    ``lama`` loads ``cfg.model`` (registry name or path) into an :class:`Inpainter`;
    ``telea``/``ns`` give a :class:`~lama_video.classical.ClassicalEngine`; ``auto`` is ``lama``
    when the weights are found, else ``telea`` with one logged notice saying how to install them.

    Raises:
        WeightsError: ``engine="lama"`` and the weights are missing or cannot be loaded.
    """
    from lama_video.classical import ClassicalEngine

    if cfg.engine in ("telea", "ns"):
        return ClassicalEngine(cfg.engine, radius_px=cfg.classical_radius_px)
    # The weights lookup is torch-free: an `auto` run that falls back to Telea never imports torch.
    from lama_video.model.registry import download_hint, weights_available

    if cfg.engine == "auto" and not weights_available(cfg.model):
        log.warning(
            "LaMa weights %r not found; using OpenCV Telea instead (install them with "
            "`%s` or pass --model PATH)",
            cfg.model,
            download_hint(cfg.model),
        )
        return ClassicalEngine("telea", radius_px=cfg.classical_radius_px)
    if cfg.engine not in ("auto", "lama"):
        raise ConfigError(f"inpaint.engine: got {cfg.engine!r}, expected auto, lama, telea or ns")
    if not weights_available(cfg.model):
        raise WeightsError(
            f"LaMa weights {cfg.model!r} not found (not a file and not in the weights cache); run "
            f"`{download_hint(cfg.model)}` or pass --model PATH"
        )
    from lama_video.inpaint import Inpainter  # late import: only the LaMa path needs torch

    return Inpainter.from_pretrained(
        cfg.model,
        trust_checkpoint=cfg.trust_checkpoint,
        device=cfg.device,
        precision=cfg.precision,
        batch_size=cfg.batch_size,
        crop_trigger_px=cfg.crop_trigger_px,
        crop_margin_px=cfg.crop_margin_px,
        resize_limit_px=cfg.resize_limit_px,
    )
