"""Static overlays (logos, watermarks, burnt-in text) on every shared sequence.

Each shared sequence gets two generated overlays burnt in (``I = a W + (1 - a) J``): one
semi-transparent and one opaque. The kind (a ring-and-bar logo, a word of text, a running
timestamp whose digits change every frame), the opacity (30 %, 55 %, 80 %), the corner and the
size (2-10 % of the frame) cycle over the sequences, so no knob meets one clip only.

- Removal, mask given (``remove --overlay MASK --dilate 0``; the mask is every pixel the overlay
  touches in any frame): hole PSNR, texture ratio and flicker ratio over those pixels (the
  fill-quality issue's definitions, shared with ``bench/fill_quality.py``), beside per-frame
  OpenCV Telea with the same mask in the same run.
- Detection (``--overlay auto``'s finder) on the clean clip (must find nothing) and on both
  burnt clips: coverage of the overlay's pixels (coverage of at least half a pixel) and the found
  area over the overlay's area.
- Cost: the finder's seconds per 100 frames, and ``remove --overlay MASK`` against
  ``remove --mask MASK`` (the same holes, no un-blending), in the same run.

``--shift K`` moves the cycle of kinds, opacities, colours, corners and sizes by K sequences: each
sequence gets other overlays (K = 0 is the protocol the README's tables use), a check that a
change helps beyond the overlays it was measured on.

``--crf N``: the burnt clips (and the clean ones the finder must find nothing on) are encoded
with libx264 at CRF N (yuv420p, as users' videos are) and decoded before detection and removal;
the figures stay against the clean frames, so they hold the encoding's own error at the overlay's
sharp edges, amplified by ``1 / (1 - a)`` where it is un-blended.

``--steady``: the repository's own ``samples/clip.mp4`` (a real handheld shot, 568x320, 149
frames) with a ring logo at 30 %, 40 % and 60 % burnt into its top right corner. The camera
barely moves, so no frame shows the scene under the logo's middle and the temporal engine's
fill there is invented: what un-blending does on a steady shot, where the fill cannot stand in
for the background. Un-blended, fill only and Telea, mask given, hole PSNR (no shared data
needed).

Usage:
    python bench/overlays.py [--size 432x240] [--frames 40] [--seq NAME ...] [--shift K]
        [--json OUT]
    python bench/overlays.py --detect-only --crf 18   # detection on H.264-encoded clips
    python bench/overlays.py --crf 18                 # detection and removal on them
    python bench/overlays.py --steady
    python bench/overlays.py --figure docs/overlay_before_after.jpg   # the README's image

Data: ``../shared/data/sequences``; the script says so and stops when it is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from fill_quality import DATA, Reference, evaluate, load, sequences
from quality import read_pngs, write_pngs

from lama_video.config import RunConfig
from lama_video.overlay import detect_overlays
from lama_video.pipeline import remove_object

KINDS = ("ring", "text", "timestamp")
OPACITIES = (0.3, 0.55, 0.8)
CORNERS = ((0.78, 0.2), (0.22, 0.8), (0.78, 0.8), (0.22, 0.2))
SIZES = (0.03, 0.06, 0.09)
COLOURS = ((255, 255, 255), (250, 210, 40), (30, 30, 30), (220, 40, 40))


def _antialiased(draw, h: int, w: int, ss: int = 4) -> np.ndarray:
    big = np.zeros((h * ss, w * ss), np.uint8)
    draw(big, ss)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def ring_logo(h: int, w: int, frac: float, pos: tuple[float, float]) -> np.ndarray:
    r = np.sqrt(frac * h * w) / 2
    cx, cy = pos[0] * w, pos[1] * h

    def draw(img: np.ndarray, s: int) -> None:
        cv2.circle(img, (int(cx * s), int(cy * s)), int(r * 0.85 * s), 255, int(r * 0.25 * s))
        x0, x1 = int((cx - r * 0.13) * s), int((cx + r * 0.13) * s)
        cv2.rectangle(img, (x0, int((cy - r * 0.9) * s)), (x1, int((cy + r * 0.9) * s)), 255, -1)

    return _antialiased(draw, h, w)


def text_shape(h: int, w: int, words: str, frac: float, pos: tuple[float, float]) -> np.ndarray:
    font = cv2.FONT_HERSHEY_DUPLEX
    (tw, th), _ = cv2.getTextSize("00:00:00:00", font, 1.0, 2)
    scale = np.sqrt(frac * h * w / (tw * th * 1.6))

    def draw(img: np.ndarray, s: int) -> None:
        thick = max(1, round(2.2 * scale * s))
        (tw2, th2), _ = cv2.getTextSize(words, font, scale * s, thick)
        x = int(np.clip(pos[0] * w * s - tw2 / 2, 2 * s, w * s - tw2 - 2 * s))
        y = int(np.clip(pos[1] * h * s + th2 / 2, th2 + 2 * s, h * s - 4 * s))
        cv2.putText(img, words, (x, y), font, scale * s, 255, thick, cv2.LINE_AA)

    return _antialiased(draw, h, w)


def overlay_shapes(kind: str, n: int, h: int, w: int, frac: float, pos) -> list[np.ndarray]:
    """Per-frame coverage maps in [0, 1] (the same map every frame except for the timestamp)."""
    if kind == "ring":
        return [ring_logo(h, w, frac, pos)] * n
    if kind == "text":
        return [text_shape(h, w, "SAMPLE", frac, pos)] * n
    return [text_shape(h, w, f"00:00:{t // 25:02d}:{t % 25:02d}", frac, pos) for t in range(n)]


def overlay_case(i: int, case: str, n: int, h: int, w: int) -> tuple[str, float, list, tuple]:
    """The ``case`` ("semi" or "opaque") overlay of the ``i``-th sequence in the cycle: its kind,
    opacity, per-frame coverage maps and colour."""
    j = i if case == "semi" else i + 1
    kind = KINDS[j % 3]
    opacity = OPACITIES[i % 3] if case == "semi" else 1.0
    shapes = overlay_shapes(kind, n, h, w, SIZES[(i + j) % 3], CORNERS[j % 4])
    return kind, opacity, shapes, COLOURS[(i + (case == "opaque")) % 4]


def hole_masks(shapes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(touched, given): every pixel the overlay touches in any frame (what the figures are
    measured on), and those grown by 1 px (the mask the removal is given)."""
    touched = np.max(np.stack(shapes), axis=0) > 0.02
    return touched, cv2.dilate(touched.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def burn(frames, shapes, opacity: float, colour) -> list[np.ndarray]:
    col = np.array(colour, np.float32)
    out = []
    for f, s in zip(frames, shapes, strict=True):
        a = (s * opacity)[..., None]
        out.append(np.clip(np.rint(a * col + (1 - a) * f.astype(np.float32)), 0, 255))
    return [o.astype(np.uint8) for o in out]


def run_removal(
    work: Path, burnt, region, cfg: RunConfig, *, cost: bool
) -> dict[str, tuple[list, float]]:
    write_pngs(work / "frames", burnt, rgb=True)
    cv2.imwrite(str(work / "overlay.png"), region.astype(np.uint8) * 255)
    write_pngs(work / "masks", [region] * len(burnt), rgb=False)
    res = {}
    runs = (
        ("unblend", {"overlay": work / "overlay.png"}, cfg),
        ("mask only", {"mask": work / "masks"}, cfg),
        (
            "telea",
            {"mask": work / "masks"},
            cfg.replace({"temporal": {"enabled": False}, "inpaint": {"engine": "telea"}}),
        ),
    )
    for label, kw, run_cfg in runs:
        if label == "mask only" and not cost:
            continue
        out_dir = work / f"out_{label.replace(' ', '_')}"
        t0 = time.perf_counter()
        remove_object(work / "frames", output=out_dir, config=run_cfg, overwrite=True, **kw)
        res[label] = (read_pngs(out_dir), time.perf_counter() - t0)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="432x240")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seq", nargs="*")
    ap.add_argument(
        "--shift",
        type=int,
        default=0,
        help="move the cycle of overlays by this many sequences (0: the README's protocol)",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--summarise", nargs="+", type=Path, help="only print these JSON results")
    ap.add_argument(
        "--detect-only", action="store_true", help="only the detection figures (no removal)"
    )
    ap.add_argument(
        "--crf",
        type=int,
        default=None,
        help="detect and remove on the clips encoded with libx264 at this CRF and decoded (the "
        "figures are still against the clean frames)",
    )
    ap.add_argument(
        "--figure",
        type=Path,
        help="write the README's before/after image (the sample clip, --overlay auto) here",
    )
    ap.add_argument(
        "--steady", action="store_true", help="logos on the sample clip, a steady handheld shot"
    )
    args = ap.parse_args()
    if args.figure:
        figure(args.figure)
        return
    if args.steady:
        steady()
        return
    if args.summarise:
        summarise([row for p in args.summarise for row in json.loads(p.read_text())])
        return
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}; nothing to measure", file=sys.stderr)
        sys.exit(2)
    size = tuple(int(v) for v in args.size.split("x"))
    cfg = RunConfig().replace({"masks": {"dilate_px": 0}})
    rows = []
    every = sequences(size, None)  # the cycle of kinds and opacities does not depend on --seq
    for name in sequences(size, args.seq):
        i = every.index(name) + args.shift
        gt, _ = load(name, size, args.frames)
        h, w = gt[0].shape[:2]
        t0 = time.perf_counter()
        seen = gt if args.crf is None else h264(gt, args.crf)
        clean = detect_overlays(seen, n_frames=len(seen))
        det_s = time.perf_counter() - t0
        row = {
            "seq": name,
            "clean_found": len(clean.regions),
            "detect_s_per_100": det_s * 100 / len(gt),
        }
        for case in ("semi", "opaque"):
            kind, opacity, shapes, colour = overlay_case(i, case, len(gt), h, w)
            burnt = burn(gt, shapes, opacity, colour)
            if args.crf is not None:
                burnt = h264(burnt, args.crf)
            touched, region = hole_masks(shapes)
            res: dict = {}
            if not args.detect_only:
                ref = Reference(gt, [touched] * len(gt))
                with tempfile.TemporaryDirectory() as tmp:
                    res = run_removal(Path(tmp), burnt, region, cfg, cost=case == "semi")
            found = detect_overlays(burnt, n_frames=len(burnt))
            pixels = np.max(np.stack(shapes), axis=0) >= 0.5
            row[case] = {
                "kind": kind,
                "opacity": opacity,
                "coverage": float((found.mask & pixels).sum() / pixels.sum()),
                "area_ratio": float(found.mask.sum() / pixels.sum()),
                "unblend_cost": res["unblend"][1] / res["mask only"][1]
                if "mask only" in res
                else None,
                **{
                    label: evaluate(out, gt, [touched] * len(gt), ref)
                    for label, (out, _) in res.items()
                },
            }
        rows.append(row)
        print(row_line(row), flush=True)
    summarise(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def h264(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """RGB frames encoded with libx264 (CRF ``crf``, preset medium, yuv420p, 25 fps) in memory and
    decoded again: what a detector meets in real footage instead of lossless PNG frames. Without
    x264's macroblock tree, as ``lama-video``'s own writer encodes by default
    (``encode.reproducible``): with it the bytes differ from run to run (three runs of one clip,
    three outputs), and so did the detection figures."""
    import io

    import av

    buf = io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium", "x264-params": "mbtree=0"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as src:
        return [x.to_ndarray(format="rgb24") for x in src.decode(video=0)]


SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "clip.mp4"
STEADY = ((0.3, (30, 30, 30)), (0.4, (255, 255, 255)), (0.6, (220, 40, 40)))


def sample_clip() -> tuple[list[np.ndarray], np.ndarray]:
    """The sample clip's frames (RGB) and the ring logo burnt into them (its top right corner,
    5 % of the frame), for ``--steady`` and ``--figure``."""
    from lama_video.video import open_video

    with open_video(SAMPLE) as reader:
        gt = [f.rgb for f in reader.frames()]
    h, w = gt[0].shape[:2]
    return gt, ring_logo(h, w, 0.05, (0.78, 0.2))


def steady() -> None:
    """Logos burnt into the sample clip (a steady handheld shot), mask given."""
    gt, shape = sample_clip()
    h, w = gt[0].shape[:2]
    touched, region = hole_masks([shape])
    ref = Reference(gt, [touched] * len(gt))
    cfg = RunConfig().replace({"masks": {"dilate_px": 0}})
    print(f"{SAMPLE.name}, {w}x{h}, {len(gt)} frames; ring logo, 5 % of the frame; hole PSNR dB")
    for opacity, colour in STEADY:
        burnt = burn(gt, [shape] * len(gt), opacity, colour)
        with tempfile.TemporaryDirectory() as tmp:
            res = run_removal(Path(tmp), burnt, region, cfg, cost=True)
        got = {k: evaluate(out, gt, [touched] * len(gt), ref) for k, (out, _) in res.items()}
        print(
            f"  {opacity:.0%} {colour}: un-blended {got['unblend']['hole_psnr']:.2f} "
            f"(texture {got['unblend']['texture']:.2f}, flicker {got['unblend']['flicker']:.2f}), "
            f"fill only {got['mask only']['hole_psnr']:.2f}, Telea {got['telea']['hole_psnr']:.2f}",
            flush=True,
        )


def figure(path: Path, index: int = 100) -> None:
    """The README's before/after image: a 60 % white ring logo burnt into the sample clip,
    ``remove --overlay auto`` (nothing else given), frame ``index``'s top-right quarter: input,
    result, original side by side."""
    gt, shape = sample_clip()
    h, w = gt[0].shape[:2]
    burnt = burn(gt, [shape] * len(gt), 0.6, (255, 255, 255))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        write_pngs(t / "in", burnt, rgb=True)
        remove_object(t / "in", output=t / "out", overlay="auto", overwrite=True)
        out = cv2.imread(str(sorted((t / "out").glob("*.png"))[index]))
    quarter = np.s_[: h // 2, w // 2 :]
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in (burnt[index], gt[index])]
    row = np.hstack([bgr[0][quarter], out[quarter], bgr[1][quarter]])
    cv2.imwrite(str(path), row, [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {path} (frame {index} of {SAMPLE.name}: input, --overlay auto, original)")


def row_line(row: dict) -> str:
    """One clip's figures on one line."""
    s, o = row["semi"], row["opaque"]
    line = f"{row['seq']:20s} clean:{row['clean_found']} det {row['detect_s_per_100']:.2f}s/100"
    if "unblend" in s:
        line += (
            f" | semi {s['kind']:9s} {s['opacity']:.2f}: {s['unblend']['hole_psnr']:.2f} dB "
            f"(fill {s['mask only']['hole_psnr']:.2f}, telea {s['telea']['hole_psnr']:.2f}) | "
            f"opaque {o['kind']:9s}: {o['unblend']['hole_psnr']:.2f} dB "
            f"(telea {o['telea']['hole_psnr']:.2f}) tex {o['unblend']['texture']:.2f} "
            f"flk {o['unblend']['flicker']:.2f} | cost {s['unblend_cost']:.2f}"
        )
    line += (
        f" | found {s['kind']} {s['opacity']:.2f}: {s['coverage']:.3f}/{s['area_ratio']:.2f}x, "
        f"{o['kind']} 1.00: {o['coverage']:.3f}/{o['area_ratio']:.2f}x"
    )
    return line


def summarise(rows: list[dict]) -> None:
    def col(case, label, key):
        return np.array([r[case][label][key] for r in rows])

    if "unblend" in rows[0]["semi"]:
        print("\nsemi-transparent, mask given (hole PSNR dB): mean / worst")
        for label in ("unblend", "mask only", "telea"):
            v = col("semi", label, "hole_psnr")
            print(f"  {label:10s} {v.mean():6.2f} / {v.min():6.2f}")
        print("opaque, mask given: hole PSNR, texture, flicker (mean / worst)")
        for label in ("unblend", "telea"):
            p, t, f = (col("opaque", label, k) for k in ("hole_psnr", "texture", "flicker"))
            print(
                f"  {label:10s} {p.mean():6.2f} / {p.min():6.2f} dB   texture {t.mean():.2f} / "
                f"{t.min():.2f}   flicker {f.mean():.2f} / {f.max():.2f}"
            )
        gain = col("opaque", "unblend", "hole_psnr") - col("opaque", "telea", "hole_psnr")
        print(f"  opaque gain over Telea: {gain.mean():+.2f} dB mean, {gain.min():+.2f} worst")
        cost = np.array([r["semi"]["unblend_cost"] for r in rows])
        print(
            f"un-blending cost: remove --overlay / remove --mask = {np.median(cost):.2f} (median)"
        )
    cov = np.array([r[c]["coverage"] for r in rows for c in ("semi", "opaque")])
    area = np.array([r[c]["area_ratio"] for r in rows for c in ("semi", "opaque")])
    hit = (cov >= 0.99) & (area <= 1.5)
    found = area > 0
    print(
        f"detection: coverage >= 0.99 at area <= 1.5x on {int(hit.sum())} of {cov.size} "
        f"overlays (coverage >= 0.99 at any area: {int((cov >= 0.99).sum())}; mean coverage "
        f"{cov.mean():.2f}; area ratio of those found, median "
        f"{np.median(area[found]) if found.any() else 0:.2f}); found on "
        f"{sum(r['clean_found'] > 0 for r in rows)} of {len(rows)} clean clips; "
        f"{np.mean([r['detect_s_per_100'] for r in rows]):.2f} s per 100 frames"
    )


if __name__ == "__main__":
    main()
