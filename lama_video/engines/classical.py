"""Classical inpainting with OpenCV (Telea, Navier-Stokes): the engine that needs no weights.

Telea (2004) and Bertalmio et al. (2001, Navier-Stokes) propagate the colours of the hole's
border inwards. They are fast and deterministic, good enough for thin holes and blurry on large
ones: the fallback when the LaMa weights are not installed.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.config import InpaintConfig
from lama_video.engines.base import WORKER_THREADS, fill_each
from lama_video.flow import bbox

_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
_BOX_MARGIN_PX = 3  # the hole's box is grown by the radius and this


class ClassicalEngine:
    """OpenCV ``cv2.inpaint`` applied to each frame of a batch (implements ``ImageEngine``).

    Args:
        method: ``"telea"`` (fast marching, Telea 2004) or ``"ns"`` (Navier-Stokes, Bertalmio 2001).
        radius_px: neighbourhood radius around each hole pixel that the method draws colours from.
    """

    def __init__(
        self, method: str = "telea", radius_px: int = InpaintConfig().classical_radius_px
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
        if int(radius_px) < 1:
            raise ValueError(f"radius_px must be >= 1, got {radius_px!r}")
        self.method = method
        self.radius_px = int(radius_px)
        self.name = method

    def __repr__(self) -> str:
        return f"ClassicalEngine(method={self.method!r}, radius_px={self.radius_px})"

    def inpaint(self, frames: NDArray[np.uint8], masks: NDArray[np.bool_]) -> NDArray[np.uint8]:
        """Fill the holes of each frame.

        Args:
            frames: (N, H, W, 3) uint8 RGB.
            masks: (N, H, W) bool, True = hole.

        Returns:
            (N, H, W, 3) uint8 RGB; pixels where the mask is False equal the input bit for bit.

        Raises:
            ValueError: ``frames``/``masks`` do not follow that contract.
        """
        flag = _METHODS[self.method]
        margin = self.radius_px + _BOX_MARGIN_PX

        def fill(frame: NDArray[np.uint8], hole: NDArray[np.bool_]) -> NDArray[np.uint8]:
            # Only the hole's box grown by more than the radius: a hole pixel reads the known
            # pixels within the radius of it, so the result is the same as on the whole frame
            # (a test checks it bit for bit). cv2.inpaint is channel-order agnostic (each channel
            # is filled the same way), so RGB goes in and comes out without conversion.
            box = bbox(hole, margin)
            assert box is not None  # fill_each calls it on frames with a hole only
            y0, y1, x0, x1 = box
            out = frame.copy()
            out[y0:y1, x0:x1] = cv2.inpaint(
                np.ascontiguousarray(frame[y0:y1, x0:x1]),
                np.ascontiguousarray(hole[y0:y1, x0:x1]).view(np.uint8) * np.uint8(255),
                self.radius_px,
                flag,
            )
            return out

        # OpenCV releases the GIL while it fills, so the batch's frames fill side by side (its
        # own threads do not help here).
        return fill_each(frames, masks, fill, threads=WORKER_THREADS)

    __call__ = inpaint
