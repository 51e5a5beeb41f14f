"""How much a clean plate (``remove --reference FRAME:IMAGE``) helps: the fill-quality protocol.

Each shared sequence once as background, once as the pasted object (the pairs of
``bench/fill_quality.py``, 40 frames), removed twice by the default temporal engine in the same
run: as is, and with a clean plate of one frame. The plate is that frame's ground truth: a
perfect hand-painted plate, so the figures are what a plate can give at best, carried to the
other frames by the plate's alignment (``flow.align_homography``). The plate's own frame is left
out of every figure (it would be exact by construction). Printed per pair: hole PSNR of the
frames without and with the plate, the share of hole pixels the engine invented without it, and
the flicker ratio (fill-quality definition) both ways; then the mean and the worst pair.

    OMP_NUM_THREADS=1 python bench/reference_plate.py [--plate 20] [--size 854x480] [--window 10]

``--window N`` cuts the temporal windows to N frames, so that most frames lie outside the plate's
windows and take it by alignment (one homography, where it fits around the hole), not by
propagation: the measure of that path.

Needs ``../shared/data/sequences``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from fill_quality import DATA, Reference, load, sequences
from quality import read_pngs, write_pasted_pair

from lama_video import pipeline
from lama_video.config import RunConfig


def _remove(
    pair: Path, plate: Path | None, index: int, out: Path, window: int | None = None
) -> tuple[list, float]:
    cfg = RunConfig().replace({"masks": {"dilate_px": 0}})
    if window:
        cfg = cfg.replace({"temporal": {"window_frames": window, "overlap_frames": 2}})
    refs = {index: plate} if plate is not None else None
    real = pipeline.build_video_engine
    invented: list[float] = []

    def build(*args, **kwargs):  # record where the hole pixels came from
        engine = real(*args, **kwargs)
        engine.record_qc = True
        pop = engine.pop_qc

        def pop_and_count(i):
            info = pop(i)
            if info is not None and i != index:
                invented.append(float((info.confidence == 0).mean()))
            return info

        engine.pop_qc = pop_and_count
        return engine

    pipeline.build_video_engine = build
    try:
        pipeline.remove_object(
            pair / "frames", pair / "masks", out, config=cfg, overwrite=True, references=refs
        )
    finally:
        pipeline.build_video_engine = real
    return read_pngs(out), float(np.mean(invented)) if invented else 0.0


def _hole_psnr(out, gt, holes, skip: int) -> float:
    vals = []
    for t, (o, g, h) in enumerate(zip(out, gt, holes, strict=True)):
        if t == skip or not h.any():
            continue
        mse = float(((o[h].astype(np.float64) - g[h]) ** 2).mean())
        vals.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
    return float(np.mean(vals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="432x240")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--plate", type=int, default=20, help="frame given a plate (default 20)")
    ap.add_argument(
        "--window",
        type=int,
        default=None,
        help="temporal windows of N frames (2 shared) instead of the default: most frames then "
        "lie outside the plate's windows and take it by alignment, not propagation",
    )
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this benchmark needs ../shared/data/sequences")
    size = tuple(int(v) for v in args.size.split("x"))
    names = sequences(size, None)  # type: ignore[arg-type]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, a in enumerate(names):
            b = names[(i + 1) % len(names)]
            gt, _ = load(a, size, args.frames)  # type: ignore[arg-type]
            obj, om = load(b, size, None)  # type: ignore[arg-type]
            pair = Path(tmp) / f"{a}__{b}"
            holes = write_pasted_pair(gt, obj, om, pair)
            k = min(args.plate, len(gt) - 1)
            plate = pair / "plate.png"
            cv2.imwrite(str(plate), cv2.cvtColor(gt[k], cv2.COLOR_RGB2BGR))
            ref = Reference(gt, holes)
            base, inv = _remove(pair, None, k, pair / "out_base", args.window)
            with_plate, inv2 = _remove(pair, plate, k, pair / "out_plate", args.window)
            row = (
                f"{a}:{b}",
                _hole_psnr(base, gt, holes, k),
                _hole_psnr(with_plate, gt, holes, k),
                inv,
                inv2,
                ref.flicker_measure(base) / ref.gt_flicker,
                ref.flicker_measure(with_plate) / ref.gt_flicker,
            )
            rows.append(row)
            print(
                f"{row[0]:34s} hole PSNR {row[1]:6.2f} -> {row[2]:6.2f} dB  invented "
                f"{row[3]:.3f} -> {row[4]:.3f}  flicker {row[5]:.3f} -> {row[6]:.3f}",
                flush=True,
            )
    arr = np.array([r[1:] for r in rows])
    gain = arr[:, 1] - arr[:, 0]
    print(
        f"mean: hole PSNR {arr[:, 0].mean():.2f} -> {arr[:, 1].mean():.2f} dB (gain "
        f"{gain.mean():+.2f}, least {gain.min():+.2f} on {rows[int(gain.argmin())][0]}); "
        f"invented {arr[:, 2].mean():.3f} -> {arr[:, 3].mean():.3f}; flicker "
        f"{arr[:, 4].mean():.3f} -> {arr[:, 5].mean():.3f} (worst {arr[:, 4].max():.3f} -> "
        f"{arr[:, 5].max():.3f})"
    )


if __name__ == "__main__":
    main()
