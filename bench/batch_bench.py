"""Batch throughput: jobs/s locally (1 and N worker processes) and on Ray; one long clip split into
windows on Ray against one process.

    python bench/batch_bench.py          # the defaults below; Ray rows need the ray extra
    python bench/batch_bench.py --jobs 16 --workers 4 --long ../shared/data/videos/X.mp4

Short jobs: ``--jobs`` copies of ``--clip`` (default tests/fixtures/media/aac.mp4, 45 frames 320x240
+ AAC), each with a static box mask, per-frame Telea, x264 ultrafast: small jobs, so the numbers
show the per-job overhead of each way of running them. Every row starts its worker processes
(spawned pool, or Ray actors: each imports lama_video and torch); the second Ray batch runs on the
instance the first one started. Ray's own start-up is timed apart.

Long clip: ``--long`` (default ../shared/data/videos/ffmpeg-python_in.mp4, 209 frames 320x240
with audio, from the shared data folder) through the temporal engine (default windows 60/10,
Telea) in one process, then split into ``--split-frames`` windows run as Ray tasks and joined;
the two outputs are compared frame by frame.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _prepare_short(folder: Path, clip: Path, n: int) -> Path:
    from lama_video.video import open_video, write_png

    with open_video(clip) as r:
        w, h = r.info.width, r.info.height
    mask = np.zeros((h, w, 3), np.uint8)
    mask[h // 4 : h // 2, w // 3 : w // 2] = 255
    folder.mkdir(parents=True)
    for i in range(n):
        shutil.copy(clip, folder / f"clip{i:03d}{clip.suffix}")
        write_png(folder / f"clip{i:03d}_mask.png", mask)
    return folder


def _decode(path: Path) -> list[np.ndarray]:
    from lama_video.video import open_video

    with open_video(path) as r:
        return [f.rgb for f in r.frames()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=16, help="short jobs per row")
    ap.add_argument("--clip", type=Path, default=ROOT / "tests/fixtures/media/aac.mp4")
    ap.add_argument("--workers", type=int, default=2, help="processes / Ray CPUs")
    ap.add_argument("--long", type=Path, default=SHARED / "videos/ffmpeg-python_in.mp4")
    ap.add_argument("--split-frames", type=int, default=100, help="frames per Ray task (long clip)")
    ap.add_argument("--no-ray", action="store_true", help="local rows only")
    ap.add_argument("--no-long", action="store_true", help="skip the long clip")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from lama_video.batching import Job, batch
    from lama_video.config import RunConfig
    from lama_video.masks import Box
    from lama_video.pipeline import remove_object
    from lama_video.video import open_video

    short_cfg = RunConfig().replace(
        {
            "encode": {"preset": "ultrafast"},
            "inpaint": {"engine": "telea"},
            "temporal": {"enabled": False},
        }
    )
    long_cfg = RunConfig().replace(
        {"encode": {"preset": "ultrafast"}, "inpaint": {"engine": "telea"}}
    )
    ray = None
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("ray is not installed (pip install 'lama-video[ray]'): Ray rows skipped")
    rows: list[tuple[str, str, str, str]] = []
    load0 = _load()
    tmp = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    try:
        src = _prepare_short(tmp / "src", args.clip, args.jobs)
        frames_per_job = len(_decode(args.clip))

        def short_row(name: str, **kw: object) -> float:
            out = tmp / f"out-{len(rows)}"
            t0 = time.perf_counter()
            rep = batch(src, out, config=short_cfg, **kw)  # type: ignore[arg-type]
            dt = time.perf_counter() - t0
            assert rep.ok and rep.count("done") == args.jobs, rep.table()
            rows.append(
                (
                    name,
                    f"{dt:.1f}",
                    f"{args.jobs / dt:.2f}",
                    f"{args.jobs * frames_per_job / dt:.0f}",
                )
            )
            return dt

        t_one = short_row("local, 1 process (in this one)", workers=1)
        t_pool = short_row(f"local, {args.workers} worker processes", workers=args.workers)
        t_ray = t_warm = None
        if ray is not None:
            t0 = time.perf_counter()
            ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="WARNING")
            t_init = time.perf_counter() - t0
            rows.append((f"Ray start-up (local, {args.workers} CPUs)", f"{t_init:.1f}", "", ""))
            t_ray = short_row(f"Ray, {args.workers} CPUs (first batch)", ray_address="local")
            t_warm = short_row(f"Ray, {args.workers} CPUs (second batch)", ray_address="local")

        long_rows: list[tuple[str, str, str, str]] = []
        if not args.no_long:
            if not args.long.exists():
                print(f"long clip {args.long} is missing (../shared/data not here?): skipped")
            else:
                n_long = len(_decode(args.long))
                with open_video(args.long) as r:
                    w, h = r.info.width, r.info.height
                box = Box(w // 3, h // 4, w // 5, h // 4)
                t0 = time.perf_counter()
                remove_object(args.long, box, tmp / "long_single.mp4", config=long_cfg)
                t_single = time.perf_counter() - t0
                long_rows.append(("one process", f"{t_single:.1f}", f"{n_long / t_single:.1f}", ""))
                if ray is not None:
                    job_src = tmp / "long_src"
                    job_src.mkdir()
                    shutil.copy(args.long, job_src / f"long{args.long.suffix}")
                    name = f"long{args.long.suffix}"
                    job = Job(
                        name=name,
                        input=job_src / name,
                        output=tmp / "long_split" / name,
                        mask=box,
                        config=long_cfg,
                    )
                    t0 = time.perf_counter()
                    rep = batch(
                        [job],
                        tmp / "long_split",
                        ray_address="local",
                        split_frames=args.split_frames,
                    )
                    t_split = time.perf_counter() - t0
                    assert rep.ok, rep.table()
                    a = _decode(tmp / "long_single.mp4")
                    b = _decode(tmp / "long_split" / name)
                    worst = max(
                        int(np.abs(x.astype(np.int16) - y).max()) for x, y in zip(a, b, strict=True)
                    )
                    tasks = rep.results[0].tasks
                    long_rows.append(
                        (
                            f"Ray, {tasks} window tasks on {args.workers} CPUs",
                            f"{t_split:.1f}",
                            f"{n_long / t_split:.1f}",
                            f"{len(b)}/{len(a)} frames, max diff {worst}",
                        )
                    )
        if ray is not None:
            ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nload average before/after: {load0} / {_load()}")
    print(
        f"\nShort jobs: {args.jobs} x {args.clip.name} ({frames_per_job} frames), "
        "per-frame telea, x264 ultrafast"
    )
    _table(("run", "wall s", "jobs/s", "frames/s"), rows)
    print(f"2 processes vs 1: x{t_one / t_pool:.2f}")
    if t_ray is not None and t_warm is not None:
        print(
            f"Ray overhead vs processes: {(t_ray - t_pool) / args.jobs * 1000:+.0f} ms/job "
            f"(first batch), {(t_warm - t_pool) / args.jobs * 1000:+.0f} ms/job (second); each "
            "batch starts its own worker processes (pool or actors)"
        )
    if long_rows:
        print(f"\nLong clip: {args.long.name}, temporal engine (window 60, overlap 10), telea")
        _table(("run", "wall s", "frames/s", "check"), long_rows)
    return 0


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
