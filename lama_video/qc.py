"""The editor's review of a removal: where each hole pixel came from, as a tint and a report.

The temporal engine records, per frame, the confidence of every hole pixel (:class:`QcInfo`);
:func:`tint` paints a review frame from it and :class:`QcReport` sums it up per frame, with the
frames most worth a look. Leaf module: numpy only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lama_video.fsutil import write_atomic

# Review classes of hole pixels (QcInfo.classes).
QC_PROPAGATED = 1  # copied along the flow from frames that show the background
QC_INVENTED = 2  # no frame shows it: filled by the image engine (pulled from keyframes)
QC_LOW_CONFIDENCE = 3  # propagated, but mostly replaced by a smooth fill where it mismatched
LOW_CONFIDENCE = 0.5  # propagated pixels whose weight against the smooth fill is below this


@dataclass(frozen=True)
class QcInfo:
    """Where the hole pixels of one frame came from.

    Attributes:
        ys, xs: (K,) the hole's pixel coordinates.
        confidence: (K,) float32 in [0, 1]: 1 = propagated from real footage, as is; lower where
            the propagated colours were blended towards a smooth fill because they mismatched
            the frame around the hole; 0 = invented (no frame shows the pixel).
    """

    ys: NDArray[np.intp]
    xs: NDArray[np.intp]
    confidence: NDArray[np.float32]

    @property
    def classes(self) -> NDArray[np.uint8]:
        """(K,) uint8: QC_PROPAGATED, QC_INVENTED or QC_LOW_CONFIDENCE per hole pixel."""
        out = np.full(self.confidence.shape, QC_PROPAGATED, np.uint8)
        out[self.confidence < LOW_CONFIDENCE] = QC_LOW_CONFIDENCE
        out[self.confidence <= 0] = QC_INVENTED
        return out


# Review tint (RGB) per class, blended over the output with TINT_ALPHA.
TINT_RGB: dict[int, tuple[int, int, int]] = {
    QC_PROPAGATED: (40, 200, 90),  # green: real footage from neighbouring frames
    QC_INVENTED: (230, 40, 210),  # magenta: invented by the image engine
    QC_LOW_CONFIDENCE: (255, 150, 0),  # orange: propagated but unsure, look here
}
TINT_ALPHA = 0.45


def invented_everywhere(hole: NDArray[np.bool_]) -> QcInfo:
    """QcInfo of a frame filled by an image engine alone (each frame on its own)."""
    ys, xs = np.nonzero(hole)
    return QcInfo(ys=ys, xs=xs, confidence=np.zeros(ys.size, np.float32))


def tint(rgb: NDArray[np.uint8], info: QcInfo | None) -> NDArray[np.uint8]:
    """The review frame: ``rgb`` with every hole pixel tinted by its class.

    Args:
        rgb: (H, W, 3) uint8 RGB, the output frame.
        info: the frame's QcInfo (None: no hole, ``rgb`` is returned as is).

    Returns:
        (H, W, 3) uint8 RGB; pixels outside the hole equal ``rgb``.
    """
    if info is None or info.ys.size == 0:
        return rgb
    out = rgb.copy()
    classes = info.classes
    for cls, colour in TINT_RGB.items():
        sel = classes == cls
        if not sel.any():
            continue
        ys, xs = info.ys[sel], info.xs[sel]
        mixed = (1 - TINT_ALPHA) * rgb[ys, xs].astype(np.float32) + TINT_ALPHA * np.array(
            colour, np.float32
        )
        out[ys, xs] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return out


@dataclass
class QcReport:
    """Per-frame summary of a removal (``remove --report``), in frame order."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    #: With ``--keyframe-mask``: the tracking's per-frame confidence and suggested keyframes.
    tracking: dict[str, Any] | None = None

    def add(self, index: int, time_s: float | None, info: QcInfo | None) -> None:
        """Record frame ``index`` (``info`` None: the frame had no hole)."""
        n = 0 if info is None else int(info.ys.size)
        entry: dict[str, Any] = {"frame": index, "time_s": time_s, "hole_px": n}
        if info is not None and n:
            classes = info.classes
            entry.update(
                propagated=round(float(np.mean(classes == QC_PROPAGATED)), 4),
                invented=round(float(np.mean(classes == QC_INVENTED)), 4),
                low_confidence=round(float(np.mean(classes == QC_LOW_CONFIDENCE)), 4),
                mean_confidence=round(float(info.confidence.mean()), 4),
            )
        else:
            entry.update(propagated=0.0, invented=0.0, low_confidence=0.0, mean_confidence=1.0)
        self.frames.append(entry)

    def worth_a_look(self, count: int = 10) -> list[int]:
        """Frames whose fill is least backed by real footage (most unsure hole pixels first)."""
        scored = [
            (f["hole_px"] * (1.0 - f["mean_confidence"]), f["frame"])
            for f in self.frames
            if f["hole_px"]
        ]
        scored.sort(key=lambda sf: (-sf[0], sf[1]))
        return [frame for score, frame in scored[:count] if score > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": {
                "propagated": "copied from neighbouring frames",
                "invented": "no frame shows it: filled by the image engine",
                "low_confidence": f"propagated, weight < {LOW_CONFIDENCE} against a smooth fill",
            },
            "frames": self.frames,
            "worth_a_look": self.worth_a_look(),
            **({"tracking": self.tracking} if self.tracking is not None else {}),
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the report as JSON (a temporary file beside ``path``, then renamed)."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1).encode("utf-8"))
