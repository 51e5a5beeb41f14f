"""Image engines: fill the holes of a batch of frames, one frame at a time.

Modules: :mod:`.base` (the :class:`ImageEngine` contract and :func:`check_batch`),
:mod:`.exemplar` (PatchMatch texture synthesis, no weights), :mod:`.classical` (OpenCV Telea/NS),
:mod:`.lama` (the LaMa :class:`Inpainter`); this module is the factory.

An image engine knows nothing about time. The temporal engine (``temporal.py``) and the per-frame
path of ``pipeline.py`` call one to hallucinate pixels that no neighbouring frame shows.

Contract of :meth:`ImageEngine.inpaint`: frames: (N, H, W, 3) uint8 RGB. masks: (N, H, W) bool, True
= hole. returns: (N, H, W, 3) uint8 RGB; pixels where the mask is False equal the input bit for bit.
"""

from __future__ import annotations

import logging

from lama_video.config import InpaintConfig
from lama_video.engines.base import ImageEngine, check_batch
from lama_video.errors import ConfigError, WeightsError

log = logging.getLogger(__name__)


def make_image_engine(cfg: InpaintConfig) -> ImageEngine:
    """The image engine ``cfg.engine`` names.

    ``lama`` loads ``cfg.model`` (registry name or path) into an :class:`Inpainter`;
    ``exemplar`` gives an :class:`~.exemplar.ExemplarEngine` (PatchMatch texture synthesis);
    ``telea``/``ns`` give a :class:`~.classical.ClassicalEngine`; ``auto`` is ``lama`` when the
    weights are found, else ``exemplar`` with one logged notice saying how to install them.

    Raises:
        ConfigError: ``cfg.engine`` is not one of :data:`~lama_video.config.ENGINES`.
        WeightsError: ``engine="lama"`` and the weights are missing or cannot be loaded.
    """
    from lama_video.engines.classical import ClassicalEngine
    from lama_video.engines.exemplar import ExemplarEngine

    if cfg.engine in ("telea", "ns"):
        return ClassicalEngine(cfg.engine, radius_px=cfg.classical_radius_px)
    if cfg.engine == "exemplar":
        return ExemplarEngine(fallback_radius_px=cfg.classical_radius_px)
    # The weights lookup is torch-free: an `auto` run that falls back to the exemplar engine never
    # imports torch.
    from lama_video.model.registry import download_hint, weights_available

    if cfg.engine == "auto" and not weights_available(cfg.model):
        log.warning(
            "LaMa weights %r not found; using the exemplar engine (PatchMatch texture synthesis) "
            "instead (install them with `%s` or pass --model PATH)",
            cfg.model,
            download_hint(cfg.model),
        )
        return ExemplarEngine(fallback_radius_px=cfg.classical_radius_px)
    if cfg.engine not in ("auto", "lama"):
        raise ConfigError(
            f"inpaint.engine: got {cfg.engine!r}, expected auto, lama, exemplar, telea or ns"
        )
    if not weights_available(cfg.model):
        raise WeightsError(
            f"LaMa weights {cfg.model!r} not found (not a file and not in the weights cache); run "
            f"`{download_hint(cfg.model)}` or pass --model PATH"
        )
    from lama_video.engines.lama import Inpainter  # late import: only the LaMa path needs torch

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


__all__ = ["ImageEngine", "check_batch", "make_image_engine"]
