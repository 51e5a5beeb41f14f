"""The image-engine contract: fill the holes of a batch of frames, one frame at a time.

An image engine knows nothing about time. The temporal engine (``temporal.py``) and the per-frame
path of ``pipeline.py`` call one to hallucinate pixels that no neighbouring frame shows.

Contract of :meth:`ImageEngine.inpaint`: frames: (N, H, W, 3) uint8 RGB. masks: (N, H, W) bool, True
= hole. returns: (N, H, W, 3) uint8 RGB; pixels where the mask is False equal the input bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


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


#: Worker threads for work whose items release the GIL (OpenCV, NumPy): the frames of a batch
#: filled at once by :class:`~lama_video.engines.classical.ClassicalEngine` and
#: :class:`~lama_video.engines.exemplar.ExemplarEngine`, and the temporal engine's frame pairs
#: and frames. Measured on 2 cores only; capped at 4 because DIS and OpenCV have threads of their
#: own.
WORKER_THREADS = max(1, min(4, os.cpu_count() or 1))


def fill_each(
    frames: NDArray[np.uint8],
    masks: NDArray[np.bool_],
    fill: Callable[[NDArray[np.uint8], NDArray[np.bool_]], NDArray[np.uint8]],
    threads: int = 1,
) -> NDArray[np.uint8]:
    """Apply a one-frame fill to every frame of a batch that has a hole (the contract above).

    Args:
        frames: (N, H, W, 3) uint8 RGB.
        masks: (N, H, W) bool, True = hole.
        fill: ``(frame, hole) -> filled`` on C-contiguous (H, W, 3) / (H, W) arrays; only its
            hole pixels are kept, so outside pixels stay the input's bit for bit.
        threads: frames filled at once (for a ``fill`` that releases the GIL, as OpenCV's
            calls do); each frame's result is the same either way.

    Raises:
        ValueError: ``frames``/``masks`` do not follow the contract.
    """
    check_batch(frames, masks)
    out = frames.copy()
    todo = [i for i in range(frames.shape[0]) if masks[i].any()]

    def one(i: int) -> None:
        hole = np.ascontiguousarray(masks[i])
        filled = fill(np.ascontiguousarray(frames[i]), hole)
        np.copyto(out[i], filled, where=hole[..., None])

    if threads > 1 and len(todo) > 1:
        n = min(threads, len(todo))
        with ThreadPoolExecutor(n, thread_name_prefix="lama-video-fill") as pool:
            # map re-raises the first error (or Ctrl-C) and cancels the frames not started yet.
            for _ in pool.map(one, todo):
                pass
    else:
        for i in todo:
            one(i)
    return out
