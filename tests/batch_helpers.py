"""Engine factories for the batch tests, in a module that imports neither torch nor the CLI, so
that worker processes (spawned, or Ray's) that unpickle them start fast."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from lama_video.config import RunConfig
from lama_video.engines.classical import ClassicalEngine


def telea(cfg: RunConfig) -> ClassicalEngine:
    """OpenCV Telea with the config's radius (what ``inpaint.engine: telea`` builds)."""
    return ClassicalEngine("telea", radius_px=cfg.inpaint.classical_radius_px)


class CrashOnce:
    """A factory whose first call, in any process, kills that process (like a lost GPU node).

    Args:
        marker: file created just before the crash; its presence lets later calls work.
    """

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __call__(self, cfg: RunConfig) -> ClassicalEngine:
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(17)  # no cleanup, no exception: the worker process just dies
        return telea(cfg)


def moving_masks(folder: Path, n: int = 45) -> Path:
    """A folder of ``n`` 320x240 masks of a box moving right 4 px per frame (00000.png, ...)."""
    folder.mkdir(parents=True)
    for i in range(n):
        m = np.zeros((240, 320), np.uint8)
        m[40:90, 30 + 4 * i : 90 + 4 * i] = 255
        cv2.imwrite(str(folder / f"{i:05d}.png"), m)
    return folder
