"""Rebuild samples/ from ../shared/data (run from the repository root): the clip and its masks.

clip.mp4 is trackanything_sample2_kitten.mp4 copied byte for byte (MIT licence, see README.md). The
masks cover the white pom-pom toy at the top left: per frame, the bright low-saturation pixels of
the top-left region, largest connected component, holes filled, grown by 7 px. clip_mask.png is
frame 0's mask (for ``--keyframe-mask 0:samples/clip_mask.png``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "data" / "videos" / "trackanything_sample2_kitten.mp4"


def toy_mask(rgb: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """The white blob overlapping the previous frame's mask most (frame 0: the one at (60, 35))."""
    _h, _w = rgb.shape[:2]
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    white = (hsv[..., 2] > 140) & (hsv[..., 1] < 100)
    white = cv2.morphologyEx(white.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab = cv2.connectedComponents(white)
    if prev is None:
        k = int(lab[35, 60])
    else:
        overlap = np.bincount(lab[prev > 0], minlength=n)
        overlap[0] = 0
        k = int(np.argmax(overlap))
    if k == 0:
        raise RuntimeError("lost the toy")
    m = (lab == k).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    cnts, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(m, cnts, -1, 1, thickness=cv2.FILLED)
    m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
    return m * 255


def main() -> None:
    out = ROOT / "samples"
    shutil.copyfile(SRC, out / "clip.mp4")
    mdir = out / "clip_masks"
    mdir.mkdir(exist_ok=True)
    m = None
    with av.open(str(SRC)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            m = toy_mask(frame.to_ndarray(format="rgb24"), m)
            cv2.imwrite(str(mdir / f"{i:05d}.png"), m)
            if i == 0:
                cv2.imwrite(str(out / "clip_mask.png"), m)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
