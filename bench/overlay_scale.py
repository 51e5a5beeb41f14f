"""Overlay detection on large frames: searched at ``overlay.detect_max_side_px`` against full size.

A ring-and-bar logo (60 % white, about 5 % of the frame) is burnt into ``samples/clip.mp4`` (real
handheld footage, 568x320, 149 frames), which is scaled up to each ``--sizes`` entry frame by frame
(bilinear, so only the samples detection keeps are held). Each size runs twice, each run in a
fresh process so its own peak RSS (``VmHWM``) is reported: with the default working size and at
full size (the baseline, ``max_side_px`` at the frame's longest side). Printed per run: peak RSS,
seconds, overlays found, and the found mask's coverage of the logo (its pixels of at least half
coverage) and area over the logo's.

Usage:
    python bench/overlay_scale.py [--sizes 1920x1080 4000x3000]

Needs only the repository (no shared data).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "clip.mp4"

CHILD = """
import json, sys, time
import cv2, numpy as np
sys.path.insert(0, sys.argv[4])
from overlays import ring_logo
from lama_video.overlay import detect_overlays
from lama_video.video import open_video
w, h, side = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
with open_video(sys.argv[5]) as reader:
    clip = [f.rgb for f in reader.frames()]
h0, w0 = clip[0].shape[:2]
logo = 0.6 * ring_logo(h0, w0, 0.05, (0.78, 0.2))[..., None]
burnt = [np.clip(np.rint(logo * 255 + (1 - logo) * f), 0, 255).astype(np.uint8) for f in clip]
def frames():
    for f in burnt:
        yield cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
t0 = time.perf_counter()
found = detect_overlays(frames(), n_frames=len(burnt), max_side_px=side)
sec = time.perf_counter() - t0
big = cv2.resize(logo[..., 0] / 0.6, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
peak = 0.0
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        peak = int(line.split()[1]) / 1024
print(json.dumps({'rss_mb': peak, 'seconds': sec, 'found': len(found.regions),
                  'coverage': float((found.mask & big).sum() / big.sum()),
                  'area': float(found.mask.sum() / big.sum())}))
"""


def run(w: int, h: int, side: int) -> dict[str, float]:
    """One detection in a fresh process; its figures."""
    argv = [str(w), str(h), str(side), str(Path(__file__).parent), str(CLIP)]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from lama_video.config import RunConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["1920x1080", "4000x3000"])
    args = ap.parse_args()
    side = RunConfig().overlay.detect_max_side_px
    print(f"logo 60 % white on {CLIP.name}, scaled up; working size {side} px vs full size")
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        for label, s in ((f"at {side} px", side), ("full size", max(w, h))):
            r = run(w, h, s)
            print(
                f"{size:>10s} {label:12s} peak RSS {r['rss_mb']:6.0f} MB  {r['seconds']:5.1f} s  "
                f"found {r['found']}  coverage {r['coverage']:.3f}  area {r['area']:.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
