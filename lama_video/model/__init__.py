"""LaMa's FFC generator (tensors in, tensors out) and the loading of its released weights."""

from __future__ import annotations

from lama_video.model.ffc import FFC, FFCBlock, FFCResnetBlock, FourierUnit, SpectralTransform
from lama_video.model.generator import BIG_LAMA_ARCH, FFCResNetGenerator, GeneratorArch, big_lama

__all__ = [
    "BIG_LAMA_ARCH",
    "FFC",
    "FFCBlock",
    "FFCResNetGenerator",
    "FFCResnetBlock",
    "FourierUnit",
    "GeneratorArch",
    "SpectralTransform",
    "big_lama",
]
