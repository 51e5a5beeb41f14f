"""Fill quality on every shared sequence, with the fill-quality issue's exact definitions.

Protocol (the issue's "Definitions", so that our figures and the reviewers' are comparable):

- Pairs: the shared DAVIS sequences in name order; sequence i is the background (and ground truth)
  and sequence i+1 (cyclically) the pasted object, so every sequence appears once as background
  and once as object. Frames resized to ``--size`` (default 432x240; ``INTER_AREA``), masks
  ``INTER_NEAREST`` then ``> 127``; the first ``--frames`` (40) frames of the background, the
  object cycled if shorter. With ``--size 854x480`` only the sequences stored at 854x480 are used.
- The paste is removed with ``remove_object`` on PNG folders, ``dilate_px 0`` (as
  ``lama-video remove FRAMES --mask MASKS -o OUT --dilate 0``), with the temporal engine (default
  image engine: LaMa with weights, else the exemplar engine) and with the per-frame OpenCV Telea
  baseline, in the same run.
- hole PSNR: per frame, PSNR over the hole pixels (three channels, 8-bit); mean over frames.
- SSIM: per frame, gaussian-window SSIM of the whole frame (as ``bench/quality.py``); mean.
- texture ratio: per frame, mean |Laplacian| (``cv2.Laplacian`` of the grey image as float32,
  3x3) over the hole pixels of the output, divided by the same over the ground truth; mean.
- flicker ratio: for each t, flow from frame t+1 to t (DIS medium) on the ground truth; the hole
  pixels of frame t+1 whose forward-backward flow error is below 1 px; mean over them of
  |out(t+1) - warp(out(t))| (mean over RGB); the clip's mean of that, divided by the same measure
  on the ground truth.

Every pair is printed, then the mean and the worst pair of each metric (lowest hole PSNR, SSIM and
texture ratio, highest flicker ratio), for both engines.

``--stages`` also prints where the detail goes: the texture ratio after each stage of the temporal
engine (propagated, seam, confidence, hallucinated, smoothed, and the output after the window
cross-fade), on the pixels propagation filled (the same pixels for every stage; eroded by 1 px so
the unfilled neighbours do not count) and on the whole hole for the stages that fill all of it.

``--classes`` also splits the flicker by what the temporal engine made each hole pixel from (its
QC record, the one ``remove --qc`` tints, split its own way: the tint's low-confidence class
starts at 0.5, this one at 0.9): copied and trusted (confidence >= 0.9), copied and doubted (the
confidence fallback fired), invented. Per class: its share of the pixels the flicker
ratio is measured on, and its own ratio (output over ground truth, pooled over the clip).

``--shift K`` pairs sequence i with sequence i+K instead (K = 1 is the issue's protocol): 13 other
(background, object) pairs, each sequence still once as background and once as object, for a
check that a result is not these 13 pairs' alone (the issue measures ours on unseen clips too).

``--per-frame exemplar`` runs the per-frame baseline with the exemplar engine instead of Telea
(what ``--no-temporal`` runs by default without LaMa weights).

Usage:
    python bench/fill_quality.py [--size 432x240] [--frames 40] [--seq NAME ...] [--json OUT]
        [--shift K] [--stages] [--classes] [--per-frame telea|ns|exemplar]

Data: ``../shared/data/sequences`` relative to the repository root; the script says so and stops
when it is not there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from quality import remove_pair, ssim, write_pasted_pair

from lama_video import pipeline
from lama_video.config import RunConfig, load_config
from lama_video.flow import FlowEstimator, backward_warp, fb_error

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sequences"
KEYS = ("hole_psnr", "ssim", "texture", "flicker")
ENGINES = (("temporal", True), ("per-frame", False))
STAGES = ("propagated", "seam", "confidence", "hallucinated", "smoothed", "output")
CLASSES = ("trusted", "doubted", "invented")
TRUSTED = 0.9  # QC confidence from which a copied pixel counts as trusted


class StageTexture:
    """Texture ratios of the temporal engine's stages (a ``TemporalEngine.stage_hook``)."""

    def __init__(self, gt: list[np.ndarray], holes: list[np.ndarray]) -> None:
        self.gt_lap = [laplacian_abs(g) for g in gt]
        self.holes = holes
        self.prop: dict[int, np.ndarray] = {}  # frame -> propagated pixels (eroded)
        self.ratios: dict[tuple[str, str], list[float]] = {}

    def _ratio(self, img: np.ndarray, index: int, sel: np.ndarray) -> float | None:
        if not sel.any():
            return None
        ref = float(self.gt_lap[index][sel].mean())
        return float(laplacian_abs(img)[sel].mean()) / max(ref, 1e-6)

    def __call__(self, stage: str, index: int, img: np.ndarray, valid: np.ndarray) -> None:
        if stage == "propagated":
            self.prop[index] = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        for where, sel in (("propagated px", self.prop.get(index)), ("whole hole", valid)):
            if sel is None or (where == "whole hole" and stage not in ("hallucinated", "smoothed")):
                continue
            r = self._ratio(img, index, sel)
            if r is not None:
                self.ratios.setdefault((stage, where), []).append(r)

    def add_output(self, out: list[np.ndarray]) -> None:
        for i, img in enumerate(out):
            for where, sel in (("propagated px", self.prop.get(i)), ("whole hole", self.holes[i])):
                r = None if sel is None else self._ratio(img, i, sel)
                if r is not None:
                    self.ratios.setdefault(("output", where), []).append(r)

    def means(self) -> dict[tuple[str, str], float]:
        return {k: float(np.mean(v)) for k, v in self.ratios.items()}


class FlickerClasses:
    """Flicker split by the engine's record of each hole pixel (``TemporalEngine.pop_qc``)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.qc: dict[int, Any] = {}

    def capture(self, index: int, info: Any) -> None:
        if info is not None:
            self.qc[index] = info

    def _classes(self, index: int) -> np.ndarray:
        """(H, W) int8: -1 outside the hole, else the index into ``CLASSES``."""
        out = np.full(self.shape, -1, np.int8)
        info = self.qc.get(index)
        if info is not None:
            c = info.confidence
            out[info.ys, info.xs] = np.where(c <= 0, 2, np.where(c < TRUSTED, 1, 0))
        return out

    def measure(self, out: list[np.ndarray], gt: list[np.ndarray], ref: Reference) -> dict:
        """Per class: (share of the measured pixels, flicker ratio), pooled over the clip."""
        sums = np.zeros((len(CLASSES), 3))  # output's sum, truth's sum, pixel count
        for t, (flow, keep) in enumerate(zip(ref.back, ref.keep, strict=True)):
            if not keep.any():
                continue
            cls = self._classes(t + 1)
            for slot, frames in ((0, out), (1, gt)):
                warped = backward_warp(frames[t], flow).astype(np.float32)
                d = np.abs(frames[t + 1].astype(np.float32) - warped).mean(axis=2)
                for k in range(len(CLASSES)):
                    sel = keep & (cls == k)
                    sums[k, slot] += float(d[sel].sum())
                    if slot == 0:
                        sums[k, 2] += int(sel.sum())
        total = max(float(sums[:, 2].sum()), 1.0)
        return {
            name: (sums[k, 2] / total, sums[k, 0] / max(sums[k, 1], 1e-9) if sums[k, 2] else 0.0)
            for k, name in enumerate(CLASSES)
        }


def sequences(size: tuple[int, int], names: list[str] | None) -> list[str]:
    """Shared sequences usable at ``size`` (all for 432x240; stored at that size otherwise)."""
    found = sorted(p.name for p in DATA.iterdir() if (p / "frames").is_dir())
    if names:
        found = [n for n in found if n in names]
    if size == (432, 240):
        return found
    keep = []
    for name in found:
        first = next(p for p in sorted((DATA / name / "frames").iterdir()))
        img = cv2.imread(str(first), cv2.IMREAD_COLOR)
        if (img.shape[1], img.shape[0]) == size:
            keep.append(name)
    return keep


def load(name: str, size: tuple[int, int], n: int | None) -> tuple[list, list]:
    """RGB frames (INTER_AREA) and bool masks (INTER_NEAREST, > 127) at ``size``."""
    base = DATA / name
    fr = sorted(p for p in (base / "frames").iterdir() if p.suffix in (".png", ".jpg"))[:n]
    mk = sorted((base / "masks").glob("*.png"))[:n]
    frames = [
        cv2.resize(
            cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB),
            size,
            interpolation=cv2.INTER_AREA,
        )
        for p in fr
    ]
    masks = [
        cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), size, interpolation=cv2.INTER_NEAREST)
        > 127
        for p in mk
    ]
    return frames, masks


def laplacian_abs(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))


class Reference:
    """What depends on the ground truth only: flows t+1 -> t and their reliable hole pixels."""

    def __init__(self, gt: list[np.ndarray], holes: list[np.ndarray]) -> None:
        est = FlowEstimator(preset="medium", max_side_px=max(gt[0].shape[:2]))
        self.back: list[np.ndarray] = []  # flow t+1 -> t
        self.keep: list[np.ndarray] = []  # hole pixels of t+1 with FB error < 1 px
        for t in range(len(gt) - 1):
            f_back = est(gt[t + 1], gt[t])
            f_fwd = est(gt[t], gt[t + 1])
            self.back.append(f_back)
            self.keep.append(holes[t + 1] & (fb_error(f_back, f_fwd) < 1.0))
        self.gt_texture = [laplacian_abs(g) for g in gt]
        self.gt_flicker = self.flicker_measure(gt)

    def flicker_measure(self, frames: list[np.ndarray]) -> float:
        per_t = []
        for t, (flow, keep) in enumerate(zip(self.back, self.keep, strict=True)):
            if not keep.any():
                continue
            warped = backward_warp(frames[t], flow).astype(np.float32)
            d = np.abs(frames[t + 1].astype(np.float32) - warped).mean(axis=2)
            per_t.append(float(d[keep].mean()))
        return float(np.mean(per_t)) if per_t else float("nan")


def psnr_over(out: np.ndarray, gt: np.ndarray, where: np.ndarray) -> float:
    """PSNR (8-bit, three channels) of one frame over the pixels ``where`` (99 when exact)."""
    mse = float(((out[where].astype(np.float64) - gt[where]) ** 2).mean())
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def evaluate(
    out: list[np.ndarray], gt: list[np.ndarray], holes: list[np.ndarray], ref: Reference
) -> dict[str, float]:
    hp, tex = [], []
    for o, g, h, g_lap in zip(out, gt, holes, ref.gt_texture, strict=True):
        if not h.any():
            continue
        hp.append(psnr_over(o, g, h))
        tex.append(float(laplacian_abs(o)[h].mean()) / max(float(g_lap[h].mean()), 1e-6))
    return {
        "hole_psnr": float(np.mean(hp)),
        "ssim": float(np.mean([ssim(o, g) for o, g in zip(out, gt, strict=True)])),
        "texture": float(np.mean(tex)),
        "flicker": ref.flicker_measure(out) / max(ref.gt_flicker, 1e-9),
    }


def run_pair(
    a: str,
    b: str,
    size: tuple[int, int],
    n: int,
    cfg: RunConfig,
    work: Path,
    stages: list[dict[tuple[str, str], float]] | None = None,
    classes: dict[str, dict] | None = None,
    per_frame: str = "telea",
) -> dict[str, dict[str, float]]:
    gt, _ = load(a, size, n)
    obj, obj_masks = load(b, size, None)
    pair = work / f"{a}__{b}"
    holes = write_pasted_pair(gt, obj, obj_masks, pair)
    ref = Reference(gt, holes)
    res: dict[str, dict[str, float]] = {}
    for label, enabled in ENGINES:
        probe = StageTexture(gt, holes) if stages is not None and enabled else None
        split = FlickerClasses(holes[0].shape) if classes is not None and enabled else None
        with _engine_hooks(probe, split):
            out, fps, _ = remove_pair(pair, cfg, label, enabled, per_frame)
        if probe is not None and stages is not None:
            probe.add_output(out)
            stages.append(probe.means())
        if split is not None and classes is not None:
            classes[f"{a}:{b}"] = split.measure(out, gt, ref)
        m = evaluate(out, gt, holes, ref)
        m["fps"] = fps
        res[label] = m
    return res


@contextlib.contextmanager
def _engine_hooks(
    probe: StageTexture | None, split: FlickerClasses | None = None
) -> Iterator[None]:
    """Give the temporal engine that remove_object builds the stage hook ``probe``, and have it
    record where each hole pixel came from for ``split``."""
    if probe is None and split is None:
        yield
        return
    real = pipeline.build_video_engine

    def build(*args: Any, **kwargs: Any) -> Any:
        engine = real(*args, **kwargs)
        if probe is not None:
            engine.stage_hook = probe
        if split is not None:
            engine.record_qc = True
            pop = engine.pop_qc

            def pop_and_keep(index: int) -> Any:
                info = pop(index)
                split.capture(index, info)
                return info

            engine.pop_qc = pop_and_keep
        return engine

    pipeline.build_video_engine = build  # type: ignore[assignment]
    try:
        yield
    finally:
        pipeline.build_video_engine = real  # type: ignore[assignment]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="432x240", help="WxH of the frames (default 432x240)")
    ap.add_argument("--frames", type=int, default=40, help="frames per pair (default 40)")
    ap.add_argument("--seq", nargs="*", help="only these sequences (default: all shared ones)")
    ap.add_argument("--config", type=Path, default=None, help="YAML preset for both engines")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument(
        "--shift",
        type=int,
        default=1,
        help="pair each sequence (background) with the one this many places after it (object);"
        " 1 is the issue's protocol, another shift gives 13 other pairs (a check that a result"
        " does not hold on these pairs only)",
    )
    ap.add_argument("--stages", action="store_true", help="texture ratio after each stage")
    ap.add_argument("--classes", action="store_true", help="flicker by the pixels' origin")
    ap.add_argument(
        "--per-frame",
        default="telea",
        choices=("telea", "ns", "exemplar"),
        help="image engine of the per-frame baseline (default telea, the issues' baseline)",
    )
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"data folder {DATA} is missing; this benchmark needs ../shared/data/sequences")
    w, h = (int(v) for v in args.size.lower().split("x"))
    names = sequences((w, h), args.seq)
    if len(names) < 2:
        sys.exit(f"fewer than two sequences at {w}x{h}: {names}")
    if args.shift % len(names) == 0:
        sys.exit(f"--shift {args.shift} pairs every sequence with itself ({len(names)} sequences)")
    pairs = [(names[i], names[(i + args.shift) % len(names)]) for i in range(len(names))]
    cfg = load_config(args.config)
    print(
        f"fill quality, {len(pairs)} pairs at {w}x{h}, {args.frames} frames, dilate 0"
        + (f", pairing shift {args.shift}" if args.shift != 1 else "")
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    stages: list[dict[tuple[str, str], float]] | None = [] if args.stages else None
    classes: dict[str, dict] | None = {} if args.classes else None
    with tempfile.TemporaryDirectory(prefix="lv-fill-") as tmp:
        for a, b in pairs:
            r = run_pair(a, b, (w, h), args.frames, cfg, Path(tmp), stages, classes, args.per_frame)
            results[f"{a}:{b}"] = r
            for label, _ in ENGINES:
                m = r[label]
                print(
                    f"{a + ':' + b:34s} {label:9s} "
                    + " ".join(f"{k} {m[k]:7.3f}" for k in KEYS)
                    + f"  fps {m['fps']:5.1f}",
                    flush=True,
                )
    print("mean over pairs, and the worst pair:")
    for label, _ in ENGINES:
        vals = {k: [r[label][k] for r in results.values()] for k in KEYS}
        print(f"  {label:9s} mean  " + " ".join(f"{k} {np.mean(vals[k]):7.3f}" for k in KEYS))
        worst = []
        for k in KEYS:
            pick = max if k == "flicker" else min
            name, r = pick(results.items(), key=lambda item, k=k: item[1][label][k])
            worst.append(f"{k} {r[label][k]:7.3f} ({name})")
        print(f"  {label:9s} worst " + "; ".join(worst))
    gains = [r["temporal"]["hole_psnr"] - r["per-frame"]["hole_psnr"] for r in results.values()]
    print(
        f"hole PSNR over per-frame: mean {np.mean(gains):+.2f} dB, worst {min(gains):+.2f} dB; "
        f"pairs below it: {sum(g < 0 for g in gains)}"
    )
    below = [n for n, r in results.items() if r["temporal"]["ssim"] < r["per-frame"]["ssim"]]
    print(f"pairs with SSIM below per-frame: {len(below)} {below}")
    if stages:
        print("texture ratio after each stage of the temporal engine (mean over pairs):")
        for stage in STAGES:
            cells = []
            for where in ("propagated px", "whole hole"):
                vals = [m[(stage, where)] for m in stages if (stage, where) in m]
                cells.append(f"{where} {np.mean(vals):6.3f}" if vals else f"{where}    -  ")
            print(f"  {stage:12s} " + "  ".join(cells))
    if classes:
        print("flicker by the hole pixels' origin (share of the measured pixels, own ratio):")
        for name, split in classes.items():
            cells = [f"{c} {split[c][0]:.2f} x {split[c][1]:5.2f}" for c in CLASSES]
            print(f"  {name:34s} " + "   ".join(cells))
        for c in CLASSES:
            shares = [split[c][0] for split in classes.values()]
            ratios = [split[c][1] for split in classes.values() if split[c][0] > 0]
            print(
                f"  {c:9s} mean share {np.mean(shares):.2f}, ratio mean {np.mean(ratios):.2f}, "
                f"worst {max(ratios):.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
