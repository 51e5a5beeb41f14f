"""Still shots: does the fill of a hole that no frame uncovers stay still?

A tripod shot of a scene with an object that does not move (a sign, a parked car, a person
standing): no frame shows what is behind it, so all of the hole is invented, and the invention
should be the same in every frame, as the scene is. Each shared sequence's first frame (432x240)
is repeated for ``--frames`` frames with sensor-like noise (Gaussian, sigma 1.5 levels, new in
every frame, rounded to 8 bits) and the next sequence's first object mask (grown by 4 px) is the
hole in every frame. The clip goes through ``remove_object`` with default settings (no LaMa
weights: the exemplar engine invents).

Printed per sequence, then the mean and the worst:

- drift: the largest mean absolute difference (levels, RGB, over the hole) between a frame's fill
  and the first frame's;
- step: the mean absolute difference between consecutive frames' fills, against the same of the
  frames' own noise over the hole (about 1.7 levels), as a ratio.

Usage::

    OMP_NUM_THREADS=1 python bench/still_shots.py [--frames 40] [--seq NAME ...]

Needs ``../shared/data/sequences``; says so and stops when it is missing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from fill_quality import DATA, load, sequences
from quality import read_pngs, write_pngs

from lama_video.config import RunConfig
from lama_video.pipeline import remove_object

SIZE = (432, 240)
NOISE = 1.5


def still_clip(frame: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.clip(np.rint(frame + rng.normal(0.0, NOISE, frame.shape)), 0, 255).astype(np.uint8)
        for _ in range(n)
    ]


def measure(name: str, obj: str, n: int, work: Path) -> dict[str, float]:
    frames, _ = load(name, SIZE, 1)
    _, masks = load(obj, SIZE, 1)
    hole = cv2.dilate(masks[0].astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    clip = still_clip(frames[0].astype(np.float32), n, seed=len(name))
    write_pngs(work / "frames", clip, rgb=True)
    cv2.imwrite(str(work / "mask.png"), hole.astype(np.uint8) * 255)
    remove_object(work / "frames", work / "mask.png", work / "out", config=RunConfig())
    fills = np.stack([o[hole].astype(np.float32) for o in read_pngs(work / "out")])
    noise = np.stack([c[hole].astype(np.float32) for c in clip])
    drift = float(np.abs(fills - fills[0]).mean(axis=(1, 2)).max())
    step = float(np.abs(np.diff(fills, axis=0)).mean())
    own = float(np.abs(np.diff(noise, axis=0)).mean())
    return {"drift": drift, "step": step / own, "hole": float(hole.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seq", nargs="*")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}; nothing to measure", file=sys.stderr)
        sys.exit(2)
    every = sequences(SIZE, None)
    rows = []
    for name in sequences(SIZE, args.seq):
        obj = every[(every.index(name) + 1) % len(every)]
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(name, obj, args.frames, Path(tmp))
        rows.append((f"{name}:{obj}", r))
        print(
            f"{name + ':' + obj:34s} hole {100 * r['hole']:4.1f} %  drift {r['drift']:6.2f}  "
            f"step {r['step']:5.2f}x the noise's",
            flush=True,
        )
    drifts = [r["drift"] for _, r in rows]
    steps = [r["step"] for _, r in rows]
    worst = max(rows, key=lambda x: x[1]["drift"])
    print(
        f"mean drift {np.mean(drifts):.2f} levels, worst {worst[1]['drift']:.2f} ({worst[0]}); "
        f"step {np.mean(steps):.2f}x the noise's (worst {max(steps):.2f})"
    )


if __name__ == "__main__":
    main()
