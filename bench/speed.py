"""End-to-end speed and memory of ``remove`` beside a plain decode + re-encode of the same clip.

Speed: frames/s of :func:`lama_video.pipeline.remove_object` with default settings (no LaMa
weights: the image engine is the exemplar engine) on an 854x480 clip with its mask video (~4% of
the frame), the temporal engine and the per-frame baseline, beside decode + re-encode of the same
clip with the same encoder settings (``RunConfig().encode``), all in the same run; ``--config``
replaces the defaults and each ``--also PRESET.yaml`` adds one more temporal removal with that
preset (e.g. ``inpaint: {engine: telea}`` for the Telea figures). The machine may be shared, so the
ratio to the re-encode is the number to compare.

The engines alone (frames and holes already in memory) and the one-off start-up (building the
image engine: imports) are printed first; the timed removals run after that start-up.

Memory (``--memory``): the clip and its mask video are looped to 200 and 2,000 frames; each removal
runs in a child process that reports its own peak RSS (``ru_maxrss``), beside a plain re-encode of
the 200-frame clip in a child process of its own.

``--rounds N`` then times N more rounds of a re-encode followed by the temporal ``remove`` and
prints each round's ratio and their median: on a machine shared with other tenants one round's
ratio swings by 15 % or more, and back-to-back pairs share the same load.

``--startup`` only times the start: ``lama-video --help`` and ``lama-video remove`` up to its first
frame entering the engine (each in fresh processes, beside ``python -c pass``).

``--size 1920x1080`` first scales the clip and its mask video to that size (bicubic; the mask
nearest-neighbour), so the same measurements run on large frames.

Usage:
    python bench/speed.py [--video V.mp4 --mask M.mp4] [--size WxH] [--memory] [--long N]
        [--config C.yaml] [--also PRESET.yaml ...] [--rounds N] [--startup]

Data: ``../shared/data/videos`` relative to the repository root.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lama_video.config import RunConfig, load_config
from lama_video.pipeline import remove_object
from lama_video.video import VideoWriter, open_video

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
DEFAULT_VIDEO = VIDEOS / "diffueraser_example1_video.mp4"
DEFAULT_MASK = VIDEOS / "diffueraser_example1_mask.mp4"


def reencode(src: Path, dst: Path, cfg: RunConfig, n_frames: int | None = None) -> int:
    """Decode ``src`` and encode it to ``dst`` (looping it to ``n_frames`` if given)."""
    with open_video(src, decode=cfg.decode) as reader:
        info = reader.info
        frames = reader.frames()
        if n_frames is None:
            with VideoWriter(dst, info, encode=cfg.encode, source=src, overwrite=True) as w:
                count = 0
                for f in frames:
                    w.write(f)
                    count += 1
            return count
        clip = list(frames)
    step = (clip[1].pts - clip[0].pts) if len(clip) > 1 and clip[0].pts is not None else 1
    enc = dataclasses.replace(cfg.encode, audio="none")
    with VideoWriter(dst, info, encode=enc, overwrite=True) as w:
        for i in range(n_frames):
            f = clip[i % len(clip)]
            w.write(dataclasses.replace(f, index=i, pts=i * step))
    return n_frames


def scaled(src: Path, dst: Path, size: tuple[int, int], *, nearest: bool) -> Path:
    """``src`` scaled to ``size`` (W, H), encoded like a source clip (libx264 CRF 18, no audio)."""
    import cv2

    cfg = RunConfig()
    enc = dataclasses.replace(cfg.encode, audio="none", crf=18)
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC
    with open_video(src) as reader:
        info = dataclasses.replace(reader.info, width=size[0], height=size[1], rotation=0)
        with VideoWriter(dst, info, encode=enc, overwrite=True) as w:
            for f in reader.frames():
                rgb = cv2.resize(f.rgb, size, interpolation=interp)
                w.write(dataclasses.replace(f, rgb=rgb))
    return dst


def engine_alone(video: Path, mask: Path, cfg: RunConfig) -> None:
    """Frames/s of the temporal and per-frame engines alone on frames and holes held in memory."""
    from lama_video import masks as masks_mod
    from lama_video.pipeline import build_image_engine, build_video_engine, open_mask_track

    with open_video(video, decode=cfg.decode) as reader:
        info = reader.info
        frames = list(reader.frames())
    track = open_mask_track(
        mask, width=info.width, height=info.height, n_frames=len(frames), cfg=cfg
    )
    items = [
        (f, masks_mod.dilate(m, cfg.masks.dilate_px))
        for f, m in zip(frames, track.masks(), strict=False)
    ]
    image_engine = build_image_engine(cfg)
    for label, enabled in (("temporal", True), ("per-frame", False)):
        eng = build_video_engine(cfg.replace({"temporal": {"enabled": enabled}}), image_engine)
        c0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        n = sum(1 for _ in eng.process(iter(items)))
        sec = time.perf_counter() - t0
        c1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        print(
            f"engine {label:9s} alone   {n} frames  {n / sec:6.1f} frames/s  "
            f"({cpu / n * 1000:.0f} ms CPU/frame)  [{eng.name}]",
            flush=True,
        )


def timed_remove(video: Path, mask: Path, out: Path, cfg: RunConfig) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    res = remove_object(video, mask=mask, output=out, config=cfg, overwrite=True)
    return res.frames, time.perf_counter() - t0, res.engine


def child_rss(
    video: Path, mask: Path | None, out: Path, config: Path | None = None
) -> dict[str, float]:
    """Run one removal (``mask`` None: a plain re-encode) in a fresh process.

    Returns its peak RSS in MB, its frame count and its seconds. The peak is the child's own
    (``VmHWM`` on Linux): Linux carries ``ru_maxrss`` over ``exec``, so a child started by a
    large parent would report the parent's peak.
    """
    code = (
        "import json, resource, sys, time\n"
        "from pathlib import Path\n"
        "from lama_video.config import RunConfig, load_config\n"
        "cfg = load_config(sys.argv[4]) if sys.argv[4] else RunConfig()\n"
        "if sys.argv[2]:\n"
        "    from lama_video.pipeline import remove_object\n"
        "    r = remove_object(sys.argv[1], mask=sys.argv[2], output=sys.argv[3],\n"
        "                      config=cfg, overwrite=True)\n"
        "    n, sec = r.frames, r.seconds\n"
        "else:\n"
        "    sys.path.insert(0, sys.argv[5])\n"
        "    from speed import reencode\n"
        "    t0 = time.perf_counter()\n"
        "    n = reencode(Path(sys.argv[1]), Path(sys.argv[3]), cfg)\n"
        "    sec = time.perf_counter() - t0\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "try:\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            peak = int(line.split()[1]) / 1024\n"
        "except OSError:\n"
        "    pass\n"
        "print(json.dumps({'frames': n, 'seconds': sec, 'rss_mb': peak}))\n"
    )
    argv = [str(video), str(mask or ""), str(out), str(config or ""), str(Path(__file__).parent)]
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


_FIRST_FRAME = """
import json, os, sys, time
import lama_video.pipeline as P
iterate = P.HoleStream.__iter__
def first(self):
    for item in iterate(self):
        print(json.dumps({"first": time.time()}), flush=True)
        os._exit(0)  # measured: stop here (the temporary output is the benchmark's to clean)
        yield item
P.HoleStream.__iter__ = first
from lama_video.cli import main
sys.argv = ["lama-video", *sys.argv[1:]]
main()
"""


def start_up(video: Path, mask: Path, out: Path, runs: int = 5) -> None:
    """Seconds from launching ``lama-video remove`` to its first frame entering the engine, and
    from launching ``lama-video --help`` to its exit, beside ``python -c pass`` (the interpreter's
    own start), each a median over ``runs`` interleaved runs in fresh processes."""

    script = Path(sys.executable).with_name("lama-video")  # the installed command, as users run it
    help_cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "lama_video"]
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "lama-video --help": [*help_cmd, "--help"],
    }
    remove = [sys.executable, "-c", _FIRST_FRAME, "remove", str(video), "--mask", str(mask)]
    remove += ["-o", str(out), "--overwrite"]
    times: dict[str, list[float]] = {k: [] for k in [*cmds, "remove: first frame"]}
    for _ in range(runs):
        for label, cmd in cmds.items():
            t0 = time.time()
            subprocess.run(cmd, capture_output=True, check=True)
            times[label].append(time.time() - t0)
        t0 = time.time()
        proc = subprocess.run(remove, capture_output=True, text=True, check=True)
        first = json.loads(proc.stdout.strip().splitlines()[-1])["first"]
        times["remove: first frame"].append(first - t0)
    for label, vals in times.items():
        print(
            f"start-up {label:22s} median {statistics.median(vals):5.2f} s "
            f"(min {min(vals):.2f}, max {max(vals):.2f}, {runs} runs)",
            flush=True,
        )


def ratio_rounds(video: Path, mask: Path, work: Path, cfg: RunConfig, rounds: int) -> None:
    """``rounds`` back-to-back pairs of a re-encode and the temporal ``remove``: each pair's
    ratio of frames/s, then their median."""
    ratios = []
    for i in range(rounds):
        t0 = time.perf_counter()
        n = reencode(video, work / "round_reencode.mp4", cfg)
        base_fps = n / (time.perf_counter() - t0)
        n, sec, _ = timed_remove(video, mask, work / "round_remove.mp4", cfg)
        ratios.append(n / sec / base_fps)
        print(
            f"round {i + 1}: re-encode {base_fps:6.1f} frames/s, remove {n / sec:6.1f} frames/s "
            f"({ratios[-1]:.3f}x)",
            flush=True,
        )
    print(
        f"remove temporal, median of {rounds} rounds: {statistics.median(ratios):.3f}x re-encode "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--mask", type=Path, default=DEFAULT_MASK)
    ap.add_argument("--size", default=None, help="scale the clip to WxH first (e.g. 1920x1080)")
    ap.add_argument("--memory", action="store_true", help="also measure peak RSS vs clip length")
    ap.add_argument("--long", type=int, default=2000, help="frames of the long clip (--memory)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument(
        "--startup", action="store_true", help="only time start-up: --help and the first frame"
    )
    ap.add_argument("--config", type=Path, default=None, help="YAML preset (default: defaults)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="then N rounds of a re-encode and the temporal remove: each ratio and the median",
    )
    ap.add_argument(
        "--also",
        type=Path,
        action="append",
        default=[],
        help="YAML preset for one more temporal removal in the same run (repeatable)",
    )
    args = ap.parse_args()
    if not args.video.is_file() or not args.mask.is_file():
        sys.exit(f"missing {args.video} or {args.mask}; this benchmark needs ../shared/data/videos")
    cfg = load_config(args.config) if args.config else RunConfig()
    with tempfile.TemporaryDirectory(prefix="lv-speed-") as tmp:
        work = Path(tmp)
        if args.size:
            w, h = (int(v) for v in args.size.lower().split("x"))
            args.video = scaled(args.video, work / "video.mp4", (w, h), nearest=False)
            args.mask = scaled(args.mask, work / "mask.mp4", (w, h), nearest=True)
            print(f"clip and mask scaled to {w}x{h}", flush=True)
        if args.startup:
            start_up(args.video, args.mask, work / "startup.mp4")
            return
        if not args.skip_speed:
            # One-off start-up (imports, e.g. torch to look for the LaMa weights), paid once per
            # process: measured here so that the timed runs below compare steady throughput.
            from lama_video.pipeline import build_image_engine

            t0 = time.perf_counter()
            build_image_engine(cfg)
            print(f"start-up (image engine) {time.perf_counter() - t0:6.2f} s", flush=True)
            engine_alone(args.video, args.mask, cfg)
            t0 = time.perf_counter()
            n = reencode(args.video, work / "reencode.mp4", cfg)
            base_fps = n / (time.perf_counter() - t0)
            print(f"decode + re-encode      {n} frames  {base_fps:6.1f} frames/s", flush=True)
            runs = [("temporal", cfg), ("per-frame", cfg.replace({"temporal": {"enabled": False}}))]
            runs += [(path.stem, load_config(path)) for path in args.also]
            for label, run_cfg in runs:
                c0 = resource.getrusage(resource.RUSAGE_SELF)
                n, sec, engine = timed_remove(args.video, args.mask, work / f"{label}.mp4", run_cfg)
                c1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
                print(
                    f"remove {label:9s}        {n} frames  {n / sec:6.1f} frames/s  "
                    f"({n / sec / base_fps:.2f}x re-encode; {cpu / n * 1000:.0f} ms CPU/frame)"
                    f"  [{engine}]",
                    flush=True,
                )
            if args.rounds > 0:
                ratio_rounds(args.video, args.mask, work, cfg, args.rounds)
        if args.memory:
            for n_frames in (200, args.long):
                clip, mask = work / f"clip{n_frames}.mp4", work / f"mask{n_frames}.mp4"
                reencode(args.video, clip, cfg, n_frames)
                reencode(args.mask, mask, cfg, n_frames)
                if n_frames == 200:
                    r = child_rss(clip, None, work / "plain200.mp4", args.config)
                    print(
                        f"peak RSS   200 frames, decode + re-encode: {r['rss_mb']:7.1f} MB  "
                        f"({r['frames'] / r['seconds']:.1f} frames/s)",
                        flush=True,
                    )
                r = child_rss(clip, mask, work / f"out{n_frames}.mp4", args.config)
                print(
                    f"peak RSS {n_frames:5d} frames, remove: {r['rss_mb']:7.1f} MB  "
                    f"({r['frames'] / r['seconds']:.1f} frames/s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
