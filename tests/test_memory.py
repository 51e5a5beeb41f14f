"""Peak memory of ``remove`` does not grow with the video's length (streaming pipeline).

Each run is a fresh interpreter, so its peak RSS (its own ``VmHWM``; ``ru_maxrss`` would carry
the test process's peak over ``exec``) is not mixed with the test process or the other run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lama_video.config import EncodeConfig
from lama_video.video import VideoInfo, VideoWriter, count_frames

pytestmark = pytest.mark.slow

# Big enough frames that keeping every decoded frame of the long clip (5 * 30 * 1.56 MB) would
# exceed the allowed growth (20 % of a ~0.5 GB process + 30 MB); checked in the test itself.
WIDTH, HEIGHT = 960, 540
BOX = (420, 240, 96, 64)  # x, y, w, h: the hole
SHORT_FRAMES = 30
LONG_FACTOR = 5

CHILD = """
import json, sys
from lama_video.config import RunConfig
from lama_video.masks import Box
from lama_video.pipeline import remove_object

src, out, box = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cfg = RunConfig().replace({
    "inpaint": {"engine": "telea"},
    "temporal": {"enabled": False},
    "encode": {"preset": "ultrafast"},
})
result = remove_object(src, Box(*box), out, config=cfg)
hwm = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
print("RESULT " + json.dumps({"frames": result.frames, "peak_kib": int(hwm[0]) if hwm else None}))
"""


def write_clip(path: Path, n_frames: int) -> None:
    """A moving textured pattern (not a still: the encoder must do real work) at 25 fps."""
    info = VideoInfo(
        path=path.with_suffix(".none"),
        width=WIDTH,
        height=HEIGHT,
        time_base=Fraction(1, 25),
        frame_rate=Fraction(25),
    )
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (HEIGHT // 4, WIDTH // 2, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)  # (HEIGHT, 2 * WIDTH, 3)
    with VideoWriter(path, info, encode=EncodeConfig(preset="ultrafast", audio="none")) as writer:
        for i in range(n_frames):
            shift = (3 * i) % WIDTH
            writer.write(np.ascontiguousarray(texture[:, shift : shift + WIDTH]), pts=i)


def run_remove(src: Path, out: Path) -> tuple[int, float]:
    """Run ``remove`` in a fresh interpreter; return (frames written, its peak RSS in MiB)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = out.with_suffix(".log")
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(src), str(out), json.dumps(BOX)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 600
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                pytest.fail(f"remove on {src.name} ran past 600 s")
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    results = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and results, text[-2000:]
    res = json.loads(results[-1][len("RESULT ") :])
    # The child's own high-water mark: Linux keeps ru_maxrss across exec, so wait4 alone would
    # report the (larger) test process's peak for a child spawned from it.
    peak_kib = res["peak_kib"] if res["peak_kib"] is not None else usage.ru_maxrss
    return res["frames"], peak_kib / 1024


def test_peak_rss_does_not_grow_with_length(tmp_path: Path) -> None:
    short, long_ = tmp_path / "short.mp4", tmp_path / "long.mp4"
    n_long = SHORT_FRAMES * LONG_FACTOR
    write_clip(short, SHORT_FRAMES)
    write_clip(long_, n_long)
    assert count_frames(short) == SHORT_FRAMES
    assert count_frames(long_) == n_long

    frames_short, rss_short = run_remove(short, tmp_path / "out-short.mp4")
    frames_long, rss_long = run_remove(long_, tmp_path / "out-long.mp4")

    assert frames_short == SHORT_FRAMES
    assert frames_long == n_long
    assert count_frames(tmp_path / "out-long.mp4") == n_long
    # The bound must be able to catch a pipeline that keeps its decoded frames: the extra RGB the
    # long clip would hold is larger than the growth the bound allows.
    frame_mib = WIDTH * HEIGHT * 3 / 2**20
    allowed = 0.2 * rss_short + 30
    assert (n_long - SHORT_FRAMES) * frame_mib > allowed
    assert rss_long <= 1.2 * rss_short + 30, (
        f"peak RSS {rss_long:.0f} MiB for {n_long} frames vs {rss_short:.0f} MiB for "
        f"{SHORT_FRAMES}: memory grows with length"
    )
