"""What un-blending a static overlay adds to ``remove`` on large frames.

``samples/clip.mp4`` (real handheld footage, 568x320, 149 frames) is scaled up to ``--size``
(bicubic) with an overlay burnt in (``I = a W + (1 - a) J``): a 40 % white ring-and-bar logo
(2.2 % of the frame, top right) or an 80 % white running timestamp (1 %, top left). Each case
times ``remove --overlay MASK`` (un-blending) against ``remove --mask MASK`` (the same holes, the
default temporal engine, no un-blending) on the first ``--frames`` frames and on the whole clip,
runs interleaved (mask, overlay, mask, overlay, ...; ``--repeat`` each), frames read from a PNG
folder and written to an MP4 with the default encoder. Printed: the median seconds of each and
their ratio (the overlay issue's target: at most 1.2), and the un-blender's own fit time in the
last overlay run.

Usage:
    python bench/unblend_cost.py [--size 1920x1080] [--frames 40] [--repeat 2]

Needs only the repository (no shared data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from overlays import burn, overlay_shapes
from quality import write_pngs

from lama_video import overlay as overlay_mod
from lama_video.config import RunConfig
from lama_video.pipeline import remove_object
from lama_video.video import open_video

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "clip.mp4"
CASES = (("ring", 0.4, 0.022, (0.78, 0.2)), ("timestamp", 0.8, 0.01, (0.22, 0.15)))


def fit_timer() -> list[float]:
    """Wrap the un-blender's fit so that its seconds are recorded (one entry per fit)."""
    spent: list[float] = []
    orig = overlay_mod._fit_blend

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = orig(*args, **kwargs)
        spent.append(time.perf_counter() - t0)
        return out

    overlay_mod._fit_blend = timed  # type: ignore[assignment]
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=40, help="the short run's frames")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each, interleaved")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with open_video(CLIP) as reader:
        clip = [cv2.resize(f.rgb, (w, h), interpolation=cv2.INTER_CUBIC) for f in reader.frames()]
    cfg = RunConfig().replace({"masks": {"dilate_px": 0}})
    spent = fit_timer()
    print(f"{CLIP.name} at {w}x{h}, {len(clip)} frames; remove --overlay / remove --mask")
    for kind, opacity, frac, pos in CASES:
        shapes = overlay_shapes(kind, len(clip), h, w, frac, pos)
        burnt = burn(clip, shapes, opacity, (255, 255, 255))
        touched = np.max(np.stack(shapes), axis=0) > 0.02
        region = cv2.dilate(touched.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        for n in (args.frames, len(clip)):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                write_pngs(work / "frames", burnt[:n], rgb=True)
                cv2.imwrite(str(work / "overlay.png"), region.astype(np.uint8) * 255)
                write_pngs(work / "masks", [region] * n, rgb=False)
                times: dict[str, list[float]] = {"mask": [], "overlay": []}
                fits: list[float] = []
                for _ in range(args.repeat):
                    for label, kw in (
                        ("mask", {"mask": work / "masks"}),
                        ("overlay", {"overlay": work / "overlay.png"}),
                    ):
                        spent.clear()
                        t0 = time.perf_counter()
                        remove_object(
                            work / "frames",
                            output=work / "out.mp4",
                            config=cfg,
                            overwrite=True,
                            **kw,
                        )
                        times[label].append(time.perf_counter() - t0)
                        if label == "overlay":
                            fits = list(spent)
                m, o = statistics.median(times["mask"]), statistics.median(times["overlay"])
                print(
                    f"{kind:9s} {opacity:.0%} {n:4d} frames  mask {m:6.1f} s  overlay {o:6.1f} s"
                    f"  ratio {o / m:.2f}  | fits {len(fits)} x {np.mean(fits) * 1000:.0f} ms"
                    f" = {sum(fits):.1f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
