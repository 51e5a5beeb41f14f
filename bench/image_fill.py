"""What the image engines invent: holes in single frames, against the truth under them.

The temporal engine copies what other frames show; what no frame shows is invented by the image
engine (LaMa with weights, else the exemplar engine) on keyframes. This measures that invention
alone, on real pictures (the exemplar engine and Telea; LaMa needs weights this script does not
load):

- Pictures: the first frame of every shared DAVIS sequence at ``--size`` (432x240 by default,
  ``INTER_AREA``) and the shared still images (``../shared/data/images``, resized to the same
  longest side).
- Holes: the object mask of another sequence's first frame (the next one in name order, as in
  ``bench/fill_quality.py``, cyclically over all pictures; resized to the picture with
  ``INTER_NEAREST``, ``> 127``, grown by ``--dilate`` px), so every hole has an object's shape,
  size and place.
- hole PSNR (over the hole's pixels, RGB, 8-bit), SSIM (``bench/quality.py``'s gaussian-window
  SSIM on the hole's bounding box grown by 8 px) and texture ratio (mean |Laplacian| of the grey
  image over the hole, output / truth: 1 = as detailed as the real picture, a blur goes to 0).
- Engines: the exemplar engine with its defaults, any other settings of it given with ``--also``
  (``sigma8='{"structure_sigma_px": 8}'``), and OpenCV Telea (radius 5) as the baseline, in the
  same run; each picture's time.

Every picture is printed, then the mean and the worst picture of each figure.

Usage:
    python bench/image_fill.py [--size 432x240] [--dilate 2] [--also NAME=JSON ...] [--json OUT]

Data: ``../shared/data`` relative to the repository root; the script says so and stops when it
is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from fill_quality import laplacian_abs
from quality import ssim

from lama_video.engines.exemplar import ExemplarEngine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def pictures(size: tuple[int, int]) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) for every shared sequence's first frame and every shared still image."""
    out = []
    for seq in sorted(p for p in (DATA / "sequences").iterdir() if (p / "frames").is_dir()):
        first = sorted((seq / "frames").iterdir())[0]
        img = cv2.cvtColor(cv2.imread(str(first), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out.append((seq.name, cv2.resize(img, size, interpolation=cv2.INTER_AREA)))
    for p in sorted((DATA / "images").iterdir()):
        img = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        s = max(size) / max(img.shape[:2])
        out.append((p.stem, cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)))
    return out


def hole_masks(shapes: list[tuple[int, int]], dilate: int) -> list[np.ndarray]:
    """For picture i, the first object mask of sequence i+1 (cyclically) at its size."""
    seqs = sorted(p for p in (DATA / "sequences").iterdir() if (p / "masks").is_dir())
    raw = [cv2.imread(str(sorted((s / "masks").iterdir())[0]), cv2.IMREAD_GRAYSCALE) for s in seqs]
    out = []
    for i, (h, w) in enumerate(shapes):
        m = cv2.resize(raw[(i + 1) % len(raw)], (w, h), interpolation=cv2.INTER_NEAREST) > 127
        if dilate:
            m = cv2.dilate(m.view(np.uint8), np.ones((2 * dilate + 1,) * 2, np.uint8)) > 0
        out.append(m)
    return out


def measure(out: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    err = out[hole].astype(np.float64) - truth[hole]
    mse = float((err**2).mean())
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - 8), min(h, ys.max() + 9)
    x0, x1 = max(0, xs.min() - 8), min(w, xs.max() + 9)
    detail = float(laplacian_abs(truth)[hole].mean())
    tex = float(laplacian_abs(out)[hole].mean()) / max(detail, 1e-6)
    return {
        "hole_psnr": 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse)),
        "ssim": ssim(out[y0:y1, x0:x1], truth[y0:y1, x0:x1]),
        "texture": tex,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="432x240", help="WxH of the sequences' frames")
    ap.add_argument("--dilate", type=int, default=2, help="holes grown by this many px")
    ap.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="another exemplar setting, e.g. sigma8='{\"structure_sigma_px\": 8}'",
    )
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    if not (DATA / "sequences").is_dir() or not (DATA / "images").is_dir():
        sys.exit(f"image_fill: {DATA} (sequences/ and images/) is not there; nothing to measure")
    size = tuple(int(v) for v in args.size.split("x"))
    pics = pictures(size)  # type: ignore[arg-type]
    holes = hole_masks([p.shape[:2] for _, p in pics], args.dilate)
    engines: dict[str, object] = {"exemplar": ExemplarEngine()}
    for spec in args.also:
        name, _, kw = spec.partition("=")
        engines[name] = ExemplarEngine(**json.loads(kw))
    print(
        f"image_fill: {len(pics)} pictures, holes of another sequence's object (+{args.dilate} px)"
    )
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for (name, img), hole in zip(pics, holes, strict=True):
        res: dict[str, dict[str, float]] = {}
        for label, eng in engines.items():
            t0 = time.perf_counter()
            out = eng.inpaint(img[None], hole[None])[0]  # type: ignore[attr-defined]
            res[label] = {**measure(out, img, hole), "seconds": time.perf_counter() - t0}
        t0 = time.perf_counter()
        tel = cv2.inpaint(img, hole.view(np.uint8) * np.uint8(255), 5, cv2.INPAINT_TELEA)
        res["telea"] = {**measure(tel, img, hole), "seconds": time.perf_counter() - t0}
        rows[name] = res
        print(
            f"{name:20s} hole {hole.mean():5.1%}  "
            + "  ".join(
                f"{k} {v['hole_psnr']:5.2f} dB {v['ssim']:.3f} tex {v['texture']:4.2f} "
                f"{v['seconds']:4.2f}s"
                for k, v in res.items()
            ),
            flush=True,
        )
    for label in [*engines, "telea"]:
        vals = {k: [r[label][k] for r in rows.values()] for k in ("hole_psnr", "ssim", "texture")}
        worst = {k: min(range(len(v)), key=v.__getitem__) for k, v in vals.items()}
        names = list(rows)
        secs = float(np.mean([r[label]["seconds"] for r in rows.values()]))
        print(
            f"  {label:10s} mean hole PSNR {np.mean(vals['hole_psnr']):.2f} dB, SSIM "
            f"{np.mean(vals['ssim']):.3f}, texture {np.mean(vals['texture']):.2f}, "
            f"{secs:.2f} s; worst {vals['hole_psnr'][worst['hole_psnr']]:.2f} dB "
            f"({names[worst['hole_psnr']]}), SSIM {vals['ssim'][worst['ssim']]:.3f} "
            f"({names[worst['ssim']]}), texture {vals['texture'][worst['texture']]:.2f} "
            f"({names[worst['texture']]})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
