"""Generated overlays burnt into real footage, shared by the overlay, UI and browser tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lama_video.video import open_video

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "clip.mp4"  # 568x320, 149 frames


def ring(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Anti-aliased ring-and-bar logo coverage in [0, 1] (drawn 4x larger, then shrunk)."""
    s = 4
    big = np.zeros((h * s, w * s), np.uint8)
    cv2.circle(big, (int(cx * s), int(cy * s)), int(r * 0.85 * s), 255, int(r * 0.25 * s))
    x0, x1 = int((cx - r * 0.13) * s), int((cx + r * 0.13) * s)
    cv2.rectangle(big, (x0, int((cy - r * 0.9) * s)), (x1, int((cy + r * 0.9) * s)), 255, -1)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def sample_logo(h: int, w: int) -> np.ndarray:
    """The logo the tests burn into the sample clip: top right, about 5 % of the frame."""
    return ring(h, w, 0.78 * w, 0.2 * h, np.sqrt(0.05 * h * w) / 2)


def running_timestamp(h: int, w: int, t: int, org: tuple[int, int]) -> np.ndarray:
    """Coverage in [0, 1] of a running timestamp ``00:00:SS:FF`` at frame ``t`` (25 frames a
    second), anti-aliased, its baseline starting at ``org`` (x, y)."""
    canvas = np.zeros((h, w), np.uint8)
    text = f"00:00:{t // 25:02d}:{t % 25:02d}"
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_DUPLEX, 1.0, 255, 2, cv2.LINE_AA)
    return canvas.astype(np.float32) / 255


def burn(frames: list[np.ndarray], a: np.ndarray, colour: tuple[int, int, int]) -> list:
    """``a W + (1 - a) J`` for each frame ``J``, rounded to uint8."""
    col = np.array(colour, np.float32)
    return [
        np.clip(np.rint(a[..., None] * col + (1 - a[..., None]) * f), 0, 255).astype(np.uint8)
        for f in frames
    ]


def write_frames(folder: Path, frames: list[np.ndarray]) -> None:
    folder.mkdir()
    for k, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{k:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def read_frames(folder: Path) -> list[np.ndarray]:
    return [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.png"))
    ]


def sample_frames() -> list[np.ndarray]:
    with open_video(SAMPLE) as reader:
        return [f.rgb for f in reader.frames()]


def burnt_sample(folder: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The sample clip with a 60 %-opacity white logo burnt in, written to ``folder`` as PNGs.

    Returns:
        The clean frames and the logo's opacity map.
    """
    frames = sample_frames()
    a = 0.6 * sample_logo(*frames[0].shape[:2])
    write_frames(folder, burn(frames, a, (255, 255, 255)))
    return frames, a
