"""Batch processing without Ray: discovery, job files, manifest and resume, failures, worker
processes, Ctrl-C, and the exactness of the window split that Ray uses (run here in-process)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from batch_helpers import moving_masks, telea
from media_helpers import encode_frames
from typer.testing import CliRunner

from lama_video.batching import (
    MANIFEST_NAME,
    BatchInterrupted,
    Job,
    batch,
    discover_jobs,
    load_jobs,
    read_job_file,
)
from lama_video.batching.manifest import fingerprint
from lama_video.batching.ray import Joiner, plan_parts, run_part, split_job
from lama_video.cli import app
from lama_video.config import RunConfig, TemporalConfig
from lama_video.engines.classical import ClassicalEngine
from lama_video.errors import ConfigError
from lama_video.masks import Box, FrameRange
from lama_video.pipeline import remove_object
from lama_video.temporal import plan_windows, window_for, window_tail
from lama_video.video import list_image_files, open_video, read_image

MEDIA = Path(__file__).parent / "fixtures" / "media"
PER_FRAME = RunConfig().replace(
    {
        "encode": {"preset": "ultrafast"},
        "inpaint": {"engine": "telea"},
        "temporal": {"enabled": False},
    }
)
# The temporal engine with small windows (several windows in 45 frames) and cheap flow.
TEMPORAL = RunConfig().replace(
    {
        "encode": {"preset": "ultrafast"},
        "inpaint": {"engine": "telea"},
        "temporal": {
            "window_frames": 12,
            "overlap_frames": 4,
            "keyframe_interval": 4,
            "flow_preset": "ultrafast",
            "flow_max_side_px": 96,
            "smoothing_radius": 1,
            "max_propagation_frames": 6,
        },
    }
)


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def _mask_png(p: Path, w: int = 320, h: int = 240, x: int = 100) -> Path:
    m = np.zeros((h, w), np.uint8)
    m[h // 4 : h // 2, x : x + w // 5] = 255
    cv2.imwrite(str(p), m)
    return p


def _recordings(root: Path, names: list[str], clip: str = "odd_65x49.mp4") -> Path:
    """A folder of copies of a fixture clip, each with a mask image beside it.

    ``odd_65x49.mp4``: 12 frames 65x49, no audio (fast); ``aac.mp4``: 45 frames 320x240 + AAC.
    """
    root.mkdir(parents=True, exist_ok=True)
    w, h = (65, 49) if clip.startswith("odd") else (320, 240)
    for i, name in enumerate(names):
        shutil.copy(MEDIA / clip, root / f"{name}.mp4")
        _mask_png(root / f"{name}_mask.png", w, h, x=(7 + 9 * i) % (w // 2))
    return root


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial-" in p.name]


# ------------------------------------------------------------------------------------ discovery


def test_discovery_naming_convention(tmp_path):
    src = tmp_path / "src"
    _touch(src / "a.mp4")
    _touch(src / "a_masks" / "00000.png")
    _touch(src / "b.mov")
    _touch(src / "b_mask.png")
    _touch(src / "c.mp4")
    _touch(src / "c_mask.mp4")  # a mask video: not a job of its own
    _touch(src / "d.mkv")
    _touch(src / "d_keyframes" / "00000.png")
    _touch(src / "d_keyframes" / "00040.png")
    _touch(src / "e.mp4")  # no mask
    _touch(src / "f.mp4")
    _touch(src / "f_mask.png")
    _touch(src / "f_masks" / "00000.png")  # two masks
    _touch(src / "notes.txt")
    _touch(src / "sub" / "g.mp4")
    _touch(src / "sub" / "g_mask.jpg")
    _touch(src / "out" / "old.mp4")  # the output folder inside the source is never searched
    _touch(src / "out" / "old_mask.png")
    out = src / "out"

    jobs = {j.name: j for j in discover_jobs(src, out, config=PER_FRAME)}
    assert sorted(jobs) == ["a.mp4", "b.mov", "c.mp4", "d.mkv", "e.mp4", "f.mp4"]
    assert jobs["a.mp4"].mask == src / "a_masks" and jobs["a.mp4"].error is None
    assert jobs["b.mov"].mask == src / "b_mask.png" and jobs["b.mov"].output == out / "b.mov"
    assert jobs["c.mp4"].mask == src / "c_mask.mp4"
    assert jobs["d.mkv"].mask is None
    assert jobs["d.mkv"].keyframes == (
        (0, src / "d_keyframes" / "00000.png"),
        (40, src / "d_keyframes" / "00040.png"),
    )
    assert "no mask for e.mp4" in jobs["e.mp4"].error and "e_masks/" in jobs["e.mp4"].error
    assert "several masks" in jobs["f.mp4"].error
    assert all(j.config == PER_FRAME for j in jobs.values())

    rec = {j.name: j for j in discover_jobs(src, out, recursive=True)}
    assert "sub/g.mp4" in rec and rec["sub/g.mp4"].output == out / "sub" / "g.mp4"
    assert rec["sub/g.mp4"].mask == src / "sub" / "g_mask.jpg"
    assert not any(name.startswith("out/") for name in rec)

    with pytest.raises(ConfigError, match="no video files"):
        discover_jobs(src / "a_masks", out)


def _recording(path: Path, codec: str, fmt: str) -> Path:
    """10 frames 320x240 of a bar moving over grey, in a camera or broadcast format."""
    pictures = []
    for t in range(10):
        a = np.full((240, 320, 3), 60, np.uint8)
        a[50:100, 20 + 10 * t : 60 + 10 * t] = 220
        pictures.append(av.VideoFrame.from_ndarray(a, format="rgb24"))
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        encode_frames(out, s, pictures)
    return path


def test_recordings_in_formats_read_but_not_written(tmp_path):
    """MXF (broadcast and cinema cameras), MPEG-PS, WMV...: found in a batch folder (they were
    skipped: "holds no video files") and written as .mov (MXF, DV) or .mp4; a name another
    recording's output has gets the input's suffix kept (clip.mpg.mp4)."""
    src = tmp_path / "src"
    src.mkdir()
    names = {"cam.mxf": ("mpeg2video", "mxf"), "tape.mpg": ("mpeg2video", "mpeg")}
    names |= {"phone.3gp": ("mpeg4", "3gp"), "old.wmv": ("msmpeg4", "asf")}
    for name, (codec, fmt) in names.items():
        _recording(src / name, codec, fmt)
        _mask_png(src / f"{Path(name).stem}_mask.png")
    shutil.copy(MEDIA / "aac.mp4", src / "tape.mp4")
    _mask_png(src / "tape_mask.png")
    out = tmp_path / "out"
    jobs = {j.name: j for j in discover_jobs(src, out, config=PER_FRAME)}
    assert {n: j.output.relative_to(out).as_posix() for n, j in jobs.items()} == {
        "cam.mxf": "cam.mov",
        "old.wmv": "old.mp4",
        "phone.3gp": "phone.mp4",
        "tape.mp4": "tape.mp4",
        "tape.mpg": "tape.mpg.mp4",
    }
    flags = ["--engine", "telea", "--no-temporal", "--preset", "ultrafast"]
    res = CliRunner().invoke(app, ["batch", str(src), "-o", str(out), *flags])
    assert res.exit_code == 0, res.output
    for name in ("cam.mov", "old.mp4", "phone.mp4", "tape.mpg.mp4"):
        with open_video(out / name) as r:
            frames = [f.rgb for f in r.frames()]
        assert len(frames) == 10, name
        assert abs(float(frames[0][200:, :].mean()) - 60) < 6  # the picture, away from the hole


def test_yaml_job_file(tmp_path):
    (tmp_path / "fast.yaml").write_text("encode: {preset: ultrafast}\ninpaint: {engine: telea}\n")
    (tmp_path / "job.yaml").write_text("temporal: {window_frames: 30}\n")
    (tmp_path / "jobs.yaml").write_text(
        """
config: fast.yaml
options: {encode: {crf: 20}}
jobs:
  - input: raw/a.mp4
    mask: raw/a_masks/
  - input: raw/b.mp4
    box: 10,20,64,48
    output: clean/b_clean.mp4
    options: {encode: {crf: 30}}
  - input: raw/c.mp4
    keyframes: {0: raw/k0.png, 40: raw/k40.png}
    config: job.yaml
"""
    )
    base = RunConfig().replace({"masks": {"dilate_px": 7}})
    jobs = read_job_file(tmp_path / "jobs.yaml", tmp_path / "out", config=base)
    a, b, c = jobs
    assert a.input == tmp_path / "raw" / "a.mp4" and a.mask == tmp_path / "raw" / "a_masks"
    assert a.output == tmp_path / "out" / "a.mp4" and a.name == "a.mp4"
    assert a.config.encode.crf == 20 and a.config.encode.preset == "ultrafast"
    assert a.config.masks.dilate_px == 7  # the batch's own settings stay underneath
    assert b.mask == Box(10, 20, 64, 48) and b.name == "clean/b_clean.mp4"
    assert b.config.encode.crf == 30
    assert c.keyframes == ((0, tmp_path / "raw" / "k0.png"), (40, tmp_path / "raw" / "k40.png"))
    assert c.config.temporal.window_frames == 30 and c.config.encode.crf == 20


def test_job_file_range_and_a_read_only_input(tmp_path):
    """`range:` per job (remove --range): only those frames change, and the range is part of
    the job's identity in the manifest; an MXF input's default output is a .mov."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(MEDIA / "aac.mp4", raw / "a.mp4")
    _recording(raw / "cam.mxf", "mpeg2video", "mxf")
    (tmp_path / "jobs.yaml").write_text(
        """
jobs:
  - input: raw/a.mp4
    box: 100,80,60,40
    range: "10:20"
    output: a_frames
  - input: raw/cam.mxf
    box: 10,10,30,30
"""
    )
    a, cam = read_job_file(tmp_path / "jobs.yaml", tmp_path / "out", config=PER_FRAME)
    assert a.frames == FrameRange(10, 20) and cam.frames is None
    assert cam.output == tmp_path / "out" / "cam.mov"
    whole = dataclasses.replace(a, frames=None)
    assert fingerprint(a)["digest"] != fingerprint(whole)["digest"]
    report = batch([a, cam], tmp_path / "out", engine_factory=telea)
    assert [r.status for r in report.results] == ["done", "done"], report.results
    src = [f.rgb for f in open_video(MEDIA / "aac.mp4").frames()]
    got = [f.rgb for f in open_video(tmp_path / "out" / "a_frames").frames()]
    same = [np.array_equal(x, y) for x, y in zip(src, got, strict=True)]
    assert same == [not 10 <= i < 20 for i in range(45)]
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n  - {input: raw/a.mp4, box: '1,1,5,5', range: '20:10'}\n")
    with pytest.raises(ConfigError, match="job 1: --range '20:10'"):
        read_job_file(bad, tmp_path / "out")


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_csv_job_file_as_excel_saves_it(tmp_path, sep):
    """Excel's 'CSV UTF-8' starts with a BOM (read as a key '\\ufeffinput': unknown), and where
    the comma is the decimal mark it separates cells with ';' ('a row has more cells than the
    header'); both are read."""
    box = '"10,20,64,48"' if sep == "," else "10,20,64,48"
    rows = [sep.join(["input", "box", "range"]), sep.join(["raw/b.mp4", box, "5:15"])]
    (tmp_path / "jobs.csv").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    (job,) = read_job_file(tmp_path / "jobs.csv", tmp_path / "out")
    assert job.input == tmp_path / "raw" / "b.mp4" and job.mask == Box(10, 20, 64, 48)
    assert job.frames == FrameRange(5, 15)


def test_csv_job_file(tmp_path):
    (tmp_path / "jobs.csv").write_text(
        "input,mask,box,keyframes,output,options\n"
        "a.mp4,a_mask.png,,,,encode.crf=21;inpaint.engine=telea\n"
        'b.mp4,,"1,2,3,4",,x/b.mkv,\n'
        "c.mp4,,,0:k0.png;12:k12.png,,temporal.enabled=false\n"
    )
    a, b, c = read_job_file(tmp_path / "jobs.csv", tmp_path / "out")
    assert a.mask == tmp_path / "a_mask.png"
    assert a.config.encode.crf == 21 and a.config.inpaint.engine == "telea"
    assert b.mask == Box(1, 2, 3, 4) and b.output == tmp_path / "out" / "x" / "b.mkv"
    assert c.keyframes == ((0, tmp_path / "k0.png"), (12, tmp_path / "k12.png"))
    assert c.config.temporal.enabled is False


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("jobs:\n  - input: a.mp4\n", "exactly one of mask, box or keyframes"),
        ("jobs:\n  - input: a.mp4\n    mask: m.png\n    box: 1,1,2,2\n", "got mask, box"),
        ("jobs:\n  - input: a.mp4\n    maks: m.png\n", "unknown key 'maks'"),
        ("jobs:\n  - mask: m.png\n", "no input"),
        ("jobs:\n  - input: a.mp4\n    box: 1,1\n", "four integers"),
        ("jobs:\n  - {input: a.mp4, box: '1,1,2,2', options: {encode: {crf: 99}}}\n", "crf"),
        ("jobz: []\n", "unknown top-level key 'jobz'"),
        (
            "jobs:\n  - {input: a.mp4, box: '1,1,2,2'}\n  - {input: b/a.mp4, box: '1,1,2,2'}\n",
            "two jobs write 'a.mp4'",
        ),
    ],
)
def test_job_file_errors_name_the_problem(tmp_path, text, match):
    (tmp_path / "jobs.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_jobs(tmp_path / "jobs.yaml", tmp_path / "out")


# ------------------------------------------------------------------------- manifest and resume


def test_resume_after_interrupt_runs_each_job_once(tmp_path):
    src = _recordings(tmp_path / "src", ["a", "b", "c"])
    out = tmp_path / "out"
    seen: list[tuple[str, str]] = []

    def stop_after_first(result):
        seen.append((result.name, result.status))
        raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as exc:
        batch(src, out, config=PER_FRAME, engine_factory=telea, on_job=stop_after_first)
    rep = exc.value.report
    assert rep.interrupted and not rep.ok
    assert [r.status for r in rep.results] == ["done", "not run", "not run"]
    manifest = json.loads((out / MANIFEST_NAME).read_text())["jobs"]
    assert {k: v["status"] for k, v in manifest.items()} == {
        "a.mp4": "done",
        "b.mp4": "pending",
        "c.mp4": "pending",
    }
    assert manifest["a.mp4"]["frames"] == 12
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", MANIFEST_NAME]

    def run(cfg=PER_FRAME):
        seen.clear()
        rep = batch(
            src,
            out,
            config=cfg,
            engine_factory=telea,
            on_job=lambda r: seen.append((r.name, r.status)),
        )
        assert rep.ok
        return sorted(seen)

    assert run() == [("a.mp4", "skipped"), ("b.mp4", "done"), ("c.mp4", "done")]
    assert {p.name for p in out.iterdir()} == {"a.mp4", "b.mp4", "c.mp4", MANIFEST_NAME}
    assert run() == [("a.mp4", "skipped"), ("b.mp4", "skipped"), ("c.mp4", "skipped")]
    # A changed input, mask or setting is redone; a deleted output too; the rest is skipped.
    os.utime(src / "b.mp4", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert run() == [("a.mp4", "skipped"), ("b.mp4", "done"), ("c.mp4", "skipped")]
    _mask_png(src / "c_mask.png", 65, 49, x=3)
    assert run() == [("a.mp4", "skipped"), ("b.mp4", "skipped"), ("c.mp4", "done")]
    cfg2 = PER_FRAME.replace({"masks": {"dilate_px": 2}})
    assert [s for _, s in run(cfg2)] == ["done", "done", "done"]
    (out / "c.mp4").unlink()
    assert run(cfg2) == [("a.mp4", "skipped"), ("b.mp4", "skipped"), ("c.mp4", "done")]
    assert not _partials(out)


def test_foreign_output_is_not_replaced(tmp_path):
    src = _recordings(tmp_path / "src", ["a"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.mp4").write_bytes(b"somebody else's file")
    rep = batch(src, out, config=PER_FRAME, engine_factory=telea)
    assert [r.status for r in rep.results] == ["failed"]
    assert "already exists" in rep.results[0].error and "--overwrite" in rep.results[0].error
    assert (out / "a.mp4").read_bytes() == b"somebody else's file"
    rep = batch(src, out, config=PER_FRAME, engine_factory=telea, overwrite=True)
    assert [r.status for r in rep.results] == ["done"]


def test_failing_jobs_do_not_stop_the_others_two_workers(tmp_path):
    src = _recordings(tmp_path / "src", ["a", "b", "c"])
    cv2.imwrite(str(src / "b_mask.png"), np.zeros((49, 65), np.uint8))  # empty mask
    shutil.copy(MEDIA / "odd_65x49.mp4", src / "d.mp4")  # no mask at all
    out = tmp_path / "out"
    rep = batch(src, out, config=PER_FRAME, workers=2, engine_factory=telea)
    assert {r.name: r.status for r in rep.results} == {
        "a.mp4": "done",
        "b.mp4": "failed",
        "c.mp4": "done",
        "d.mp4": "failed",
    }
    errors = {r.name: r.error for r in rep.results}
    assert "empty" in errors["b.mp4"] and "no mask" in errors["d.mp4"] and not rep.ok
    manifest = json.loads((out / MANIFEST_NAME).read_text())["jobs"]
    assert manifest["b.mp4"]["status"] == "failed" and "empty" in manifest["b.mp4"]["error"]
    assert sorted(p.name for p in out.glob("*.mp4")) == ["a.mp4", "c.mp4"]
    # Each job is what `remove` makes of it.
    ref = remove_object(src / "a.mp4", src / "a_mask.png", tmp_path / "ref.mp4", config=PER_FRAME)
    with open_video(ref.output) as r1, open_video(out / "a.mp4") as r2:
        pairs = list(zip(r1.frames(), r2.frames(), strict=True))
    assert len(pairs) == 12 and all(np.array_equal(x.rgb, y.rgb) for x, y in pairs)

    # The CLI: exit 1, a one-line error last, the report file; only the failed jobs rerun.
    report = tmp_path / "report.json"
    flags = ["--engine", "telea", "--no-temporal", "--preset", "ultrafast"]
    res = CliRunner().invoke(
        app, ["-q", "batch", str(src), "-o", str(out), "--report", str(report), *flags]
    )
    assert res.exit_code == 1, res.output
    assert res.output.strip().splitlines()[-1].startswith("error: 2 of 4 jobs failed")
    data = json.loads(report.read_text())
    assert {j["name"]: j["status"] for j in data["jobs"]} == {
        "a.mp4": "skipped",
        "b.mp4": "failed",
        "c.mp4": "skipped",
        "d.mp4": "failed",
    }
    assert data["counts"] == {"done": 0, "skipped": 2, "failed": 2, "not run": 0}
    _mask_png(src / "b_mask.png", 65, 49, x=5)
    _mask_png(src / "d_mask.png", 65, 49, x=5)
    res = CliRunner().invoke(app, ["batch", str(src), "-o", str(out), *flags])
    assert res.exit_code == 0, res.output
    rows = {
        line.split()[0]: line.split()[1]
        for line in res.output.splitlines()
        if line.startswith(("a.mp4", "b.mp4", "c.mp4", "d.mp4"))
    }
    assert rows == {"a.mp4": "skipped", "b.mp4": "done", "c.mp4": "skipped", "d.mp4": "done"}
    assert "4 jobs: 2 done, 2 skipped" in res.output


def test_ctrl_c_in_worker_pool_leaves_no_partial_output(tmp_path):
    src = _recordings(tmp_path / "src", ["a", "b", "c"], clip="aac.mp4")
    out = tmp_path / "out"
    seen = []

    def stop(result):
        seen.append(result.name)
        raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as exc:
        batch(src, out, config=PER_FRAME, workers=2, engine_factory=telea, on_job=stop)
    assert exc.value.report.count("done") == 1
    assert not _partials(out)  # the job still running was stopped and removed its temp file
    rep = batch(src, out, config=PER_FRAME, engine_factory=telea)
    assert rep.ok and rep.count("skipped") == 1 and rep.count("done") == 2
    assert [r.name for r in rep.results if r.status == "skipped"] == seen


def test_ctrl_c_exits_130_and_a_rerun_continues(tmp_path):
    # Six jobs: the interrupt goes out when the first is done, and a loaded machine can be slow
    # to send it (with three, the other two once finished first under a parallel benchmark).
    names = ["a", "b", "c", "d", "e", "f"]
    src = _recordings(tmp_path / "src", names, clip="aac.mp4")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "lama_video",
        "-q",
        "batch",
        str(src),
        "-o",
        str(out),
        "--engine",
        "telea",
        "--preset",
        "ultrafast",
        "--no-temporal",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        # As from a terminal: a test run started in the background (`cmd &`) ignores SIGINT, and
        # its children would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    manifest = out / MANIFEST_NAME

    def finished() -> dict:
        try:
            jobs = json.loads(manifest.read_text())["jobs"]
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in jobs.items() if v["status"] == "done"}

    while not finished() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    done = finished()
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "rerun the same command" in err
    assert "Traceback" not in err
    assert 1 <= len(done) < len(names)
    assert not _partials(out)

    # The rerun (here through the API with the same settings) does only the rest.
    rep = batch(src, out, config=PER_FRAME)
    assert rep.ok and rep.count("skipped") == len(done)
    final = json.loads(manifest.read_text())["jobs"]
    for name, entry in done.items():
        assert final[name]["finished"] == entry["finished"]
    assert all(e["status"] == "done" for e in final.values()) and len(final) == len(names)


def test_ray_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    src = _recordings(tmp_path / "src", ["a"])
    with pytest.raises(ConfigError, match=r"pip install 'lama-video\[ray\]'"):
        batch(src, tmp_path / "out", ray_address="auto")
    res = CliRunner().invoke(app, ["batch", str(src), "-o", str(tmp_path / "o"), "--ray", "auto"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "error: Ray is not installed; install it with: pip install 'lama-video[ray]'"
    ]


# ------------------------------------------------------------------- the split used on Ray


def test_plan_windows_is_the_temporal_engines_plan(monkeypatch):
    from lama_video.temporal import TemporalEngine

    for n, window, overlap in [(45, 12, 4), (20, 12, 4), (12, 12, 4), (5, 12, 4), (61, 10, 5)]:
        seen: list[tuple[int, int]] = []
        real = TemporalEngine._window

        def spy(self, buf, start, *args, _seen=seen, _real=real):
            _seen.append((start, start + len(buf)))
            return _real(self, buf, start, *args)

        monkeypatch.setattr(TemporalEngine, "_window", spy)
        cfg = TemporalConfig(window_frames=window, overlap_frames=overlap)
        engine = TemporalEngine(ClassicalEngine(), cfg)
        frames = [
            (type("F", (), {"rgb": np.zeros((8, 8, 3), np.uint8)})(), np.zeros((8, 8), bool))
            for _ in range(n)
        ]
        assert len(list(engine.process(frames))) == n
        tail = window_tail(cfg, 8, 8)
        assert seen == plan_windows(n, window, overlap, tail), (n, window, overlap)


def test_plan_parts_alignment():
    t = TemporalConfig(window_frames=12, overlap_frames=4, keyframe_interval=4)
    parts = plan_parts(45, t, 16)
    assert [(p.start, p.stop, p.head, p.tail) for p in parts] == [
        (0, 20, 0, 4),
        (16, 36, 4, 4),
        (32, 45, 4, 0),
    ]
    # Parts start on keyframe-interval multiples: step 9, interval 6 -> 2 windows at least.
    t = TemporalConfig(window_frames=12, overlap_frames=3, keyframe_interval=6)
    parts = plan_parts(100, t, 9)
    assert all(p.start % 6 == 0 for p in parts) and len(parts) > 2
    assert all(a.stop - b.start == 3 for a, b in itertools.pairwise(parts))
    assert parts[-1].stop == 100
    # Overlap over half a window cannot be split exactly; per-frame parts do not overlap.
    assert len(plan_parts(100, TemporalConfig(window_frames=10, overlap_frames=6), 20)) == 1
    per = plan_parts(45, TemporalConfig(enabled=False), 20)
    assert [(p.start, p.stop, p.head, p.tail) for p in per] == [
        (0, 20, 0, 0),
        (20, 40, 0, 0),
        (40, 45, 0, 0),
    ]


@pytest.mark.parametrize("budget_mb", [None, 1], ids=["window as set", "window cut by bytes"])
def test_split_and_join_equals_one_process_exactly(tmp_path, budget_mb):
    """What each Ray task and the driver do, run here one after the other, out of order.

    With ``window_max_mb: 1`` the 320x240 clip's windows are cut from 12 frames to 4: the parts
    must be planned on the windows the engine really uses.
    """
    masks = moving_masks(tmp_path / "m")
    src = MEDIA / "aac.mp4"
    cfg = TEMPORAL
    if budget_mb is not None:
        cfg = TEMPORAL.replace({"temporal": {"window_max_mb": budget_mb}})
        assert window_for(cfg.temporal, 240, 320) == (4, 1)
    single = remove_object(src, masks, tmp_path / "single", config=cfg, image_engine=telea(cfg))
    job = Job(name="split", input=src, output=tmp_path / "split", mask=masks, config=cfg)
    parts = split_job(job, 16)
    assert parts is not None and len(parts) == (3 if budget_mb is None else 4)
    joiner = Joiner(job, parts, tmp_path / "scratch")
    results = [run_part(job, p, tmp_path / "scratch", telea) for p in parts]
    assert [joiner.add(r) for r in reversed(results)] == [False] * (len(parts) - 1) + [True]
    assert joiner.frames == single.frames == 45
    assert not (tmp_path / "scratch").exists()
    a, b = list_image_files(tmp_path / "single"), list_image_files(tmp_path / "split")
    assert len(a) == len(b) == 45
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(read_image(x), read_image(y)), x.name


def test_job_references_are_parsed_fingerprinted_and_never_split(tmp_path):
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n"
        "  - {input: a.mp4, mask: m.png, references: {40: p40.png, 3: p3.png}}\n"
        "  - {input: b.mp4, mask: m.png}\n"
    )
    (tmp_path / "jobs.csv").write_text("input,mask,references\nc.mp4,m.png,7:p7.png\n")
    a, b = read_job_file(tmp_path / "jobs.yaml", tmp_path / "out")
    (c,) = read_job_file(tmp_path / "jobs.csv", tmp_path / "out")
    assert a.references == ((3, tmp_path / "p3.png"), (40, tmp_path / "p40.png"))
    assert b.references is None and c.references == ((7, tmp_path / "p7.png"),)
    (tmp_path / "bad.yaml").write_text("jobs:\n  - {input: a.mp4, mask: m.png, references: x}\n")
    with pytest.raises(ConfigError, match="references: expected FRAME:PATH pairs"):
        read_job_file(tmp_path / "bad.yaml", tmp_path / "out")
    # A changed plate redoes the job, and so does dropping the plates.
    for name in ("a.mp4", "m.png", "p3.png", "p40.png"):
        (tmp_path / name).write_bytes(b"x")
    first = fingerprint(a)["digest"]
    (tmp_path / "p40.png").write_bytes(b"changed")
    assert fingerprint(a)["digest"] != first
    plain = dataclasses.replace(a, references=None)
    assert fingerprint(plain)["digest"] != first
    # Frame numbers are the clip's: a job with plates runs in one piece, never split for Ray.
    assert split_job(a, split_frames=1) is None
    # Pictures of the empty set (remove --clean-plate): a list, or ';' in a CSV cell.
    (tmp_path / "set.yaml").write_text(
        "jobs:\n  - {input: a.mp4, mask: m.png, clean_plates: [s1.png, sub/s2.png]}\n"
    )
    (tmp_path / "set.csv").write_text("input,mask,clean_plates\na.mp4,m.png,s1.png;s3.png\n")
    (d,) = read_job_file(tmp_path / "set.yaml", tmp_path / "out")
    (e,) = read_job_file(tmp_path / "set.csv", tmp_path / "out")
    assert d.scene_plates == (tmp_path / "s1.png", tmp_path / "sub" / "s2.png")
    assert e.scene_plates == (tmp_path / "s1.png", tmp_path / "s3.png")
    (tmp_path / "s1.png").write_bytes(b"x")
    (tmp_path / "s3.png").write_bytes(b"x")
    before = fingerprint(e)["digest"]
    (tmp_path / "s3.png").write_bytes(b"another set")
    assert fingerprint(e)["digest"] != before


def test_discovery_finds_clean_plates_beside_a_clip(tmp_path):
    src = tmp_path / "src"
    _touch(src / "a.mp4")
    _touch(src / "a_mask.png")
    _touch(src / "a_plates" / "00040.png")
    _touch(src / "a_plates" / "00003.png")
    _touch(src / "b.mp4")
    _touch(src / "b_mask.png")
    _touch(src / "c.mp4")
    _touch(src / "c_mask.png")
    _touch(src / "c_plates" / "clean.png")  # no frame number: the job fails, saying so
    jobs = {j.name: j for j in discover_jobs(src, tmp_path / "out")}
    assert jobs["a.mp4"].references == (
        (3, src / "a_plates" / "00003.png"),
        (40, src / "a_plates" / "00040.png"),
    )
    assert jobs["a.mp4"].error is None
    assert jobs["b.mp4"].references is None and jobs["b.mp4"].error is None
    assert jobs["c.mp4"].error is not None and "no frame number" in jobs["c.mp4"].error
