"""Oracles: what the fill and the un-blending would give with one quantity known exactly.

They measure where the loss lies, not the tool: each runs the real pipeline with one of its
estimates replaced by the truth the benchmark knows.

``--flow``: pairs of ``bench/fill_quality.py`` (its definitions and defaults), the temporal engine
with default settings, once as it is and once with each frame pair's completed flow inside the
grown holes replaced by DIS (the engine's own estimator, same working size) on the clean frames;
``--smoothing`` also has smoothing follow that flow (``smoothing_flow: completed``). Prints hole
PSNR, texture ratio and flicker ratio for both.

``--opacity``: sequences of ``bench/overlays.py`` with their semi-transparent overlay (the same
cycle of kinds, opacities and colours), removed as ``remove --overlay MASK --dilate 0`` (the
bench's "un-blended" run), once as it is and once with each frame recovered as
``J = (I - a W) / (1 - a)`` from the true opacity ``a`` and colour ``W`` (taken in full up to
``_FADE`` below ``overlay.max_unblend_opacity``, faded into the fill above, as the un-blender
weighs it). Prints the hole PSNR over the overlay's pixels and split by what the true opacity is
there: the plateau, the anti-aliased rim (both the same in every frame) and the pixels it covers in
some frames only (a running timestamp's digits).

Usage:
    python bench/oracles.py --flow [--size 854x480] [--pairs A:B ...] [--smoothing]
    python bench/oracles.py --opacity [--size 432x240] [--seq NAME ...]

Data: ``../shared/data/sequences`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fill_quality import DATA, Reference, evaluate, load, psnr_over, sequences
from overlays import burn, hole_masks, overlay_case, run_removal
from quality import remove_pair, write_pasted_pair

import lama_video.flow as fl
import lama_video.overlay as overlay_mod
import lama_video.temporal as temporal
from lama_video.config import RunConfig

FLOW_PAIRS = ("motocross-jump:paragliding-launch", "scooter-black:soapbox", "blackswan:breakdance")
OPACITY_SEQS = ("parkour", "breakdance")


@contextmanager
def clean_flow(gt: list[np.ndarray]) -> Iterator[None]:
    """While active, the temporal engine's completed flows inside each pair's grown holes are DIS
    on the clean frames ``gt`` (the window's frames are ``gt[start:]``)."""
    real = temporal.TemporalEngine._flows

    def flows(self: Any, data: list, need: list, start: int, cache_p: dict) -> tuple[list, list]:
        fwd, bwd = real(self, data, need, start, cache_p)
        for t in range(len(fwd)):
            if fwd[t] is None:
                continue
            h, w = data[t].gray.shape
            grey = [
                cv2.resize(fl.to_gray(gt[start + k]), (w, h), interpolation=cv2.INTER_AREA)
                for k in (t, t + 1)
            ]
            ab, ba = self._dis_both(*grey)
            grown, _ = self._pair_box(data[t], data[t + 1])
            f, b = fwd[t].copy(), bwd[t].copy()
            f[grown], b[grown] = ab[grown], ba[grown]
            fwd[t], bwd[t] = f, b
        return fwd, bwd

    temporal.TemporalEngine._flows = flows  # type: ignore[method-assign]
    try:
        yield
    finally:
        temporal.TemporalEngine._flows = real  # type: ignore[method-assign]


def flow_oracle(size: tuple[int, int], pairs: list[str], smoothing: bool) -> None:
    print(f"fill with the clean frames' flow in the holes, {size[0]}x{size[1]}, 40 frames")
    print(f"{'pair':36s} {'run':26s} hole PSNR  texture  flicker")
    for pair in pairs:
        a, b = pair.split(":")
        gt, _ = load(a, size, 40)
        obj, obj_masks = load(b, size, None)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "pair"
            holes = write_pasted_pair(gt, obj, obj_masks, work)
            ref = Reference(gt, holes)
            runs = [
                ("as it is", RunConfig(), False),
                ("clean flow, propagation", RunConfig(), True),
            ]
            if smoothing:
                cfg = RunConfig().replace({"temporal": {"smoothing_flow": "completed"}})
                runs.append(("clean flow, + smoothing", cfg, True))
            for label, cfg, oracle in runs:
                if oracle:
                    with clean_flow(gt):
                        out, _, _ = remove_pair(work, cfg, "temporal", True)
                else:
                    out, _, _ = remove_pair(work, cfg, "temporal", True)
                m = evaluate(out, gt, holes, ref)
                print(
                    f"{pair:36s} {label:26s} {m['hole_psnr']:9.2f} {m['texture']:8.3f} "
                    f"{m['flicker']:8.3f}",
                    flush=True,
                )


@contextmanager
def true_opacity(alphas: list[np.ndarray], colour: tuple[int, int, int]) -> Iterator[None]:
    """While active, the un-blender recovers each frame (in order) from the true opacity maps
    ``alphas`` and ``colour`` instead of its estimates."""
    real = overlay_mod.Unblender.apply
    w_col = np.asarray(colour, np.float64)
    frame = iter(alphas)

    def apply(self: Any, rgb: np.ndarray, filled: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.box
        a = next(frame)[y0:y1, x0:x1].astype(np.float64)
        i = rgb[y0:y1, x0:x1].astype(np.float64)
        j = (i - a[..., None] * w_col) / np.maximum(1.0 - a, 0.05)[..., None]
        weight = (overlay_mod._fade(self.max_opacity, a) * self.region)[..., None]
        out = filled.copy()
        mix = weight * j + (1.0 - weight) * filled[y0:y1, x0:x1].astype(np.float64)
        out[y0:y1, x0:x1] = np.clip(np.rint(mix), 0, 255).astype(np.uint8)
        return out

    overlay_mod.Unblender.apply = apply  # type: ignore[method-assign]
    try:
        yield
    finally:
        overlay_mod.Unblender.apply = real  # type: ignore[method-assign]


def hole_psnr(out: list[np.ndarray], gt: list[np.ndarray], where: np.ndarray) -> float:
    """The fill-quality definition over ``where`` (per frame, mean over frames)."""
    return float(np.mean([psnr_over(o, g, where) for o, g in zip(out, gt, strict=True)]))


def opacity_oracle(size: tuple[int, int], names: list[str]) -> None:
    cfg = RunConfig().replace({"masks": {"dilate_px": 0}})
    every = sequences(size, None)
    print(f"un-blending with the true opacity, {size[0]}x{size[1]}, 40 frames; hole PSNR dB")
    print(f"{'sequence':20s} {'overlay':16s} {'run':12s} all    plateau  rim    changing")
    for name in names:
        i = every.index(name)
        gt, _ = load(name, size, 40)
        h, w = gt[0].shape[:2]
        kind, opacity, shapes, colour = overlay_case(i, "semi", len(gt), h, w)
        burnt = burn(gt, shapes, opacity, colour)
        touched, region = hole_masks(shapes)
        alphas = [s * opacity for s in shapes]
        stack = np.stack(alphas)
        static = (stack.max(0) - stack.min(0)) < 1e-3
        classes = {
            "plateau": static & (stack[0] >= opacity - 1e-3),
            "rim": static & touched & (stack[0] < opacity - 1e-3),
            "changing": ~static & touched,
        }
        for label, oracle in (("as it is", False), ("true opacity", True)):
            with tempfile.TemporaryDirectory() as tmp:
                if oracle:
                    with true_opacity(alphas, colour):
                        res = run_removal(Path(tmp), burnt, region, cfg, cost=False)
                else:
                    res = run_removal(Path(tmp), burnt, region, cfg, cost=False)
            out = res["unblend"][0]
            parts = [f"{hole_psnr(out, gt, touched):6.2f}"]
            parts += [
                f"{hole_psnr(out, gt, m):6.2f}" if m.any() else "     -" for m in classes.values()
            ]
            print(
                f"{name:20s} {kind:9s} {opacity:.2f}   {label:12s} " + "  ".join(parts), flush=True
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--flow", action="store_true", help="the fill with the clean frames' flow")
    which.add_argument("--opacity", action="store_true", help="un-blending with the true opacity")
    ap.add_argument("--size", default=None, help="WxH (default 854x480 / 432x240)")
    ap.add_argument("--pairs", nargs="*", default=list(FLOW_PAIRS), help="--flow: A:B pairs")
    ap.add_argument("--smoothing", action="store_true", help="--flow: smoothing follows it too")
    ap.add_argument("--seq", nargs="*", default=list(OPACITY_SEQS), help="--opacity: sequences")
    args = ap.parse_args()
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}; nothing to measure", file=sys.stderr)
        sys.exit(2)
    default = "854x480" if args.flow else "432x240"
    size = tuple(int(v) for v in (args.size or default).split("x"))
    if args.flow:
        flow_oracle((size[0], size[1]), args.pairs, args.smoothing)
    else:
        opacity_oracle((size[0], size[1]), args.seq)


if __name__ == "__main__":
    main()
