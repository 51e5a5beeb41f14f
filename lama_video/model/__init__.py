"""LaMa's FFC generator (tensors in, tensors out) and the loading of its released weights."""

from __future__ import annotations

from lama_video.model.ffc import FFC, FFCBlock, FFCResnetBlock, FourierUnit, SpectralTransform
from lama_video.model.generator import BIG_LAMA_ARCH, FFCResNetGenerator, GeneratorArch, big_lama
from lama_video.model.weights import (
    REGISTRY,
    InputContract,
    LoadedModel,
    WeightsSpec,
    cache_dir,
    filter_state_dict,
    find_weights,
    load_model,
)

__all__ = [
    "BIG_LAMA_ARCH",
    "FFC",
    "REGISTRY",
    "FFCBlock",
    "FFCResNetGenerator",
    "FFCResnetBlock",
    "FourierUnit",
    "GeneratorArch",
    "InputContract",
    "LoadedModel",
    "SpectralTransform",
    "WeightsSpec",
    "big_lama",
    "cache_dir",
    "filter_state_dict",
    "find_weights",
    "load_model",
]
