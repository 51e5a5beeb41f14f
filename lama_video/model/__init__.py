"""LaMa's FFC generator (tensors in, tensors out) and the loading of its released weights.

Names are imported on first use, so ``lama_video.model.registry`` (torch-free) can be imported
without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FFC": "ffc",
    "FFCBlock": "ffc",
    "FFCResnetBlock": "ffc",
    "FourierUnit": "ffc",
    "SpectralTransform": "ffc",
    "FFCResNetGenerator": "generator",
    "fold_batchnorm": "inference",
    "inference_form": "inference",
    "inference_layout": "inference",
    "big_lama": "generator",
    "BIG_LAMA_ARCH": "registry",
    "GeneratorArch": "registry",
    "REGISTRY": "registry",
    "InputContract": "registry",
    "WeightsSpec": "registry",
    "cache_dir": "registry",
    "find_weights": "registry",
    "LoadedModel": "weights",
    "filter_state_dict": "weights",
    "load_model": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lama_video.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lama_video.model.{module}"), name)
