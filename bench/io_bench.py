"""Throughput and peak memory of ``remove`` next to a plain decode + re-encode of the same clip.

Cases, each run in a fresh subprocess (peak RSS is that child's own ``ru_maxrss``, read with
``os.wait4`` when it exits, so runs never contaminate each other):

* ``re-encode``: the floor: every frame read with :func:`lama_video.video.open_video` and written
  unchanged with :class:`lama_video.video.VideoWriter` (default :class:`EncodeConfig`: libx264,
  CRF 18, preset medium);
* ``per-frame telea``: :func:`lama_video.pipeline.remove_object` as ``lama-video remove IN --box
  X,Y,W,H -o OUT --engine telea --no-temporal`` does (same default encoder settings);
* ``temporal telea``: the default temporal engine with the Telea image engine (LaMa would measure
  the model, not the pipeline). On the long clip it runs only when its projected time (short
  clip time x length ratio) is within ``--temporal-budget`` seconds; otherwise a note says so.

Each case runs on a short clip and on a clip ``--repeat`` (10) times longer, made by looping the
short one with increasing timestamps (written once, without audio, with libx264 CRF 18 preset
veryfast, into a temporary folder; both clips are made the same way). The mask is a centred
:class:`~lama_video.masks.Box` of a fifth of the width and height (4 % of the frame), so the mask
source costs nothing. ``seconds`` is the work inside the child, open to close (the imports, torch
included, are done before timing and reported on their own line); ``x floor`` is seconds / the
re-encode's seconds on the same clip; ``long/short`` is the long clip's peak RSS / the short
clip's for the same engine (about 1.0 when memory does not grow with length).

Usage::

    python bench/io_bench.py                        # samples/clip.mp4, 50 and 500 frames
    python bench/io_bench.py --quick                # 25 and 250 frames
    python bench/io_bench.py --clip ../shared/data/videos/ffmpeg-python_in.mp4 --frames 100

Data: ``samples/clip.mp4`` of this repository by default (no ``../shared`` needed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT / "samples" / "clip.mp4"
CASES = ("re-encode", "per-frame telea", "temporal telea")
ENGINE_MODULES = ("lama_video.pipeline", "lama_video.engines.lama", "lama_video.temporal")


@dataclass
class Row:
    clip: str
    frames: int
    engine: str
    seconds: float | None  # None: skipped
    rss_mb: float | None
    note: str = ""

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.seconds else None


# -- child side (runs in a fresh interpreter: ``io_bench.py --child JSON``)


def _child(spec: dict) -> dict:
    """Run one case; return ``{"seconds", "frames", "engine"}``."""
    from lama_video.config import EncodeConfig, RunConfig

    if spec["case"] == "imports":
        t0 = time.perf_counter()
        for name in ENGINE_MODULES:
            importlib.import_module(name)
        return {"seconds": time.perf_counter() - t0, "frames": 0, "engine": "imports"}
    src, out = Path(spec["input"]), Path(spec["output"])
    if spec["case"] == "re-encode":
        from lama_video.video import VideoWriter, open_video

        t0 = time.perf_counter()
        with (
            open_video(src) as reader,
            VideoWriter(out, reader.info, encode=EncodeConfig(), source=src) as writer,
        ):
            for frame in reader.frames():
                writer.write(frame)
        return {
            "seconds": time.perf_counter() - t0,
            "frames": writer.frames_written,
            "engine": "re-encode",
        }
    from lama_video.masks import Box
    from lama_video.pipeline import remove_object

    # remove_object imports the engines lazily (engines.lama pulls in torch even for Telea);
    # import them now so that one-time cost stays out of the timing (the "imports" line shows it).
    for name in ENGINE_MODULES:
        importlib.import_module(name)
    cfg = RunConfig().replace(
        {
            "inpaint": {"engine": "telea"},
            "temporal": {"enabled": spec["case"] == "temporal telea"},
        }
    )
    result = remove_object(src, Box(*spec["box"]), out, config=cfg)
    return {"seconds": result.seconds, "frames": result.frames, "engine": result.engine}


# -- parent side


def run_child(spec: dict, timeout_s: float) -> tuple[dict, float]:
    """Run a case in a fresh subprocess; return its result and its own peak RSS in MB.

    Raises:
        RuntimeError: the child failed or ran past ``timeout_s``.
    """
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise RuntimeError(f"{spec['case']} on {spec.get('input')}: timed out")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read().decode(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{spec['case']} on {spec.get('input')} failed:\n{text[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :]), usage.ru_maxrss / 1024  # KiB on Linux


def make_clips(clip: Path, n_frames: int, repeat: int, folder: Path) -> tuple[Path, Path, int]:
    """Write the short clip (first ``n_frames``) and the same looped ``repeat`` times.

    Returns:
        (short path, long path, frames of the short clip).
    """
    from dataclasses import replace

    from lama_video.config import EncodeConfig
    from lama_video.video import VideoWriter, open_video

    with open_video(clip) as reader:
        info = reader.info
        frames = []
        for frame in reader.frames():
            frames.append(frame)
            if len(frames) == n_frames:
                break
    if len(frames) < 2:
        raise SystemExit(f"{clip}: fewer than 2 frames decoded; expected a video clip")
    pts = [f.pts if f.pts is not None else i for i, f in enumerate(frames)]
    step = (pts[-1] - pts[0]) // (len(pts) - 1) or 1
    period = pts[-1] - pts[0] + (frames[-1].duration or step)
    encode = EncodeConfig(preset="veryfast", audio="none")
    paths = []
    for name, times in (("short", 1), ("long", repeat)):
        path = folder / f"{name}.mp4"
        with VideoWriter(path, info, encode=encode, source=None) as writer:
            for k in range(times):
                for f, p in zip(frames, pts, strict=True):
                    writer.write(replace(f, pts=p - pts[0] + info.start_pts + k * period))
        paths.append(path)
    return paths[0], paths[1], len(frames)


def centred_box(clip: Path) -> list[int]:
    from lama_video.video import open_video

    with open_video(clip) as reader:
        w, h = reader.info.width, reader.info.height
    bw, bh = max(w // 5, 2), max(h // 5, 2)
    return [(w - bw) // 2, (h - bh) // 2, bw, bh]


def fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def print_table(rows: list[Row]) -> None:
    floor = {r.clip: r.seconds for r in rows if r.engine == "re-encode"}
    short_rss = {r.engine: r.rss_mb for r in rows if r.clip == "short"}
    head = (
        f"{'clip':<6} {'frames':>6} {'engine':<16} {'seconds':>8} {'frames/s':>9} "
        f"{'x floor':>8} {'peak RSS MB':>12} {'long/short':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = r.seconds / floor[r.clip] if r.seconds and floor.get(r.clip) else None
        growth = None
        if r.clip == "long" and r.rss_mb and short_rss.get(r.engine):
            growth = r.rss_mb / short_rss[r.engine]
        print(
            f"{r.clip:<6} {r.frames:>6} {r.engine:<16} {fmt(r.seconds, 8, 1)} "
            f"{fmt(r.fps, 9, 1)} {fmt(ratio, 8, 2)} {fmt(r.rss_mb, 12, 0)} "
            f"{fmt(growth, 11, 2)}" + (f"  ({r.note})" if r.note else "")
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="source clip (default: sample)")
    p.add_argument("--frames", type=int, default=None, help="short clip frames (default 50)")
    p.add_argument("--repeat", type=int, default=10, help="long clip = short looped N times")
    p.add_argument("--quick", action="store_true", help="25-frame short clip")
    p.add_argument(
        "--temporal-budget",
        type=float,
        default=150.0,
        help="run the temporal engine on the long clip only if projected within this (s)",
    )
    p.add_argument("--no-temporal", action="store_true", help="skip the temporal engine")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = _child(json.loads(args.child))
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    if not args.clip.is_file():
        hint = " (../shared missing?)" if "shared" in str(args.clip) else ""
        print(f"clip {args.clip} not found{hint}", file=sys.stderr)
        return 2
    n_frames = args.frames or (25 if args.quick else 50)
    print(
        f"# io_bench: {args.clip} | python {platform.python_version()} | "
        f"{os.cpu_count()} CPUs | load avg {os.getloadavg()[0]:.1f} at start"
    )
    t_start = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="io_bench-") as tmp:
        folder = Path(tmp)
        short, long_, n = make_clips(args.clip, n_frames, args.repeat, folder)
        box = centred_box(short)
        print(
            f"# clips: short {n} frames, long {n * args.repeat} frames (looped, "
            f"made in {time.perf_counter() - t_start:.0f} s); box x,y,w,h = {box}"
        )
        result, rss = run_child({"case": "imports"}, timeout_s=600)
        print(
            f"# imports only (lama_video.pipeline, .inpaint -> torch, .temporal) in a fresh "
            f"child: {result['seconds']:.1f} s, {rss:.0f} MB peak RSS",
            flush=True,
        )
        cases = [c for c in CASES if not (args.no_temporal and c.startswith("temporal"))]
        for label, path, frames in (("short", short, n), ("long", long_, n * args.repeat)):
            for case in cases:
                if case == "temporal telea" and label == "long":
                    done = next(r for r in rows if r.clip == "short" and r.engine == case)
                    projected = (done.seconds or 0) * args.repeat
                    if projected > args.temporal_budget:
                        note = (
                            f"skipped: projected {projected:.0f} s > --temporal-budget "
                            f"{args.temporal_budget:.0f} s"
                        )
                        print(f"# temporal telea on the long clip {note}")
                        rows.append(Row(label, frames, case, None, None, note))
                        continue
                spec = {
                    "case": case,
                    "input": str(path),
                    "output": str(folder / f"out-{label}-{case.replace(' ', '-')}.mp4"),
                    "box": box,
                }
                result, rss = run_child(spec, timeout_s=1800)
                if result["frames"] != frames:
                    raise RuntimeError(f"{case} wrote {result['frames']} frames, not {frames}")
                rows.append(Row(label, frames, case, result["seconds"], rss))
                print(
                    f"# {label:<5} {case:<16} {result['seconds']:6.1f} s  {rss:6.0f} MB  "
                    f"({result['engine']})",
                    flush=True,
                )
    print()
    print_table(rows)
    print(
        f"\n# total {time.perf_counter() - t_start:.0f} s; load avg {os.getloadavg()[0]:.1f} at "
        "end (figures taken on a shared machine: compare rows of one run only)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
