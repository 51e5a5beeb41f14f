"""The CLI in-process: exit codes, one-line errors, no half-written output."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_helpers import subtitle_packets, with_subtitles
from typer.testing import CliRunner

from lama_video.cli import app
from lama_video.errors import VideoOpenError

MEDIA = Path(__file__).parent / "fixtures" / "media"
runner = CliRunner()
FAST = ["--engine", "telea", "--no-temporal", "--preset", "ultrafast"]


def _run(*args: str):
    return runner.invoke(app, ["-q", *args])


def _one_line_error(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[-1]


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("remove", "image", "weights"):
        assert cmd in res.output


def test_remove_box_ok(tmp_path):
    out = tmp_path / "o.mp4"
    res = _run("remove", str(MEDIA / "aac.mp4"), "--box", "10,10,50,40", "-o", str(out), *FAST)
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1000


def test_remove_keeps_subtitles_unless_told(tmp_path):
    src = with_subtitles(tmp_path / "s.mkv", "subrip")
    kept, dropped = tmp_path / "o.mkv", tmp_path / "n.mkv"
    res = _run("remove", str(src), "--box", "10,10,50,40", "-o", str(kept), *FAST)
    assert res.exit_code == 0, res.output
    assert subtitle_packets(kept) == subtitle_packets(src) != []
    res = _run(
        "remove", str(src), "--box", "10,10,50,40", "-o", str(dropped), "--no-subtitles", *FAST
    )
    assert res.exit_code == 0, res.output
    assert subtitle_packets(dropped) == []


def test_no_mask_source_is_usage_error(tmp_path):
    res = _run("remove", str(MEDIA / "aac.mp4"), "-o", str(tmp_path / "o.mp4"))
    assert res.exit_code == 2
    assert "exactly one mask source" in res.output


@pytest.mark.parametrize("content", [b"", b"\x00" * 5000, b"not a video at all"])
def test_unreadable_input_exits_1(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    out = tmp_path / "o.mp4"
    res = _run("remove", str(bad), "--box", "0,0,8,8", "-o", str(out), *FAST)
    assert res.exit_code == 1
    assert "bad.mp4" in _one_line_error(res)
    assert not out.exists() and bad.read_bytes() == content


def test_truncated_video_exits_1(tmp_path):
    data = (MEDIA / "aac.mp4").read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 3])
    res = _run("remove", str(bad), "--box", "0,0,8,8", "-o", str(tmp_path / "o.mp4"), *FAST)
    assert res.exit_code in (0, 1)  # a cut mp4 without its index is unreadable; with it, a prefix
    if res.exit_code == 1:
        _one_line_error(res)
        assert not (tmp_path / "o.mp4").exists()


def test_missing_input_and_missing_mask(tmp_path):
    res = _run(
        "remove", str(tmp_path / "nope.mp4"), "--box", "0,0,8,8", "-o", str(tmp_path / "o.mp4")
    )
    assert res.exit_code == 1 and "does not exist" in _one_line_error(res)
    res = _run(
        "remove",
        str(MEDIA / "aac.mp4"),
        "--mask",
        str(tmp_path / "nomask"),
        "-o",
        str(tmp_path / "o.mp4"),
        *FAST,
    )
    assert res.exit_code == 1 and "nomask" in _one_line_error(res)
    assert not (tmp_path / "o.mp4").exists()


def test_mask_errors_exit_1(tmp_path):
    masks = tmp_path / "m"
    masks.mkdir()
    res = _run(
        "remove", str(MEDIA / "aac.mp4"), "--mask", str(masks), "-o", str(tmp_path / "o.mp4")
    )
    assert res.exit_code == 1 and "holds no mask images" in _one_line_error(res)
    for i in range(3):
        cv2.imwrite(str(masks / f"{i:05d}.png"), np.full((240, 320), 255, np.uint8))
    res = _run(
        "remove", str(MEDIA / "aac.mp4"), "--mask", str(masks), "-o", str(tmp_path / "o.mp4")
    )
    assert res.exit_code == 1 and "3 masks but the video has 45 frames" in _one_line_error(res)
    (masks / "00001.png").write_bytes(b"garbage")
    res = _run(
        "remove",
        str(MEDIA / "aac.mp4"),
        "--mask",
        str(masks / "00001.png"),
        "-o",
        str(tmp_path / "o.mp4"),
    )
    assert res.exit_code == 1 and "not a readable image" in _one_line_error(res)
    assert not (tmp_path / "o.mp4").exists()


def test_existing_output_and_overwrite(tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    args = ["remove", str(MEDIA / "aac.mp4"), "--box", "0,0,8,8", "-o", str(out), *FAST]
    res = _run(*args)
    assert res.exit_code == 1 and "--overwrite" in _one_line_error(res)
    assert out.read_bytes() == b"old"
    assert _run(*args, "--overwrite").exit_code == 0
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("name", ["out.png", "out.gif"])
def test_output_in_a_format_remove_does_not_write(tmp_path, name):
    res = _run(
        "remove", str(MEDIA / "aac.mp4"), "--box", "0,0,8,8", "-o", str(tmp_path / name), *FAST
    )
    line = _one_line_error(res)
    assert res.exit_code == 1 and "expected a video file" in line and ".mp4" in line
    if name.endswith(".png"):
        assert "lama-video image" in line  # where one still image goes
    assert list(tmp_path.iterdir()) == []


def test_a_warning_during_the_progress_bar_takes_its_own_line(tmp_path):
    """Log lines go through tqdm: written plainly they landed in the middle of the bar's line."""
    m = np.full((240, 320), 255, np.uint8)
    m[100:140, 100:180] = 0  # inverted: warned of while the bar runs
    cv2.imwrite(str(tmp_path / "inverted.png"), m)
    args = ["remove", str(MEDIA / "aac.mp4"), "--mask", str(tmp_path / "inverted.png")]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "o.mp4"), *FAST])
    assert res.exit_code == 0, res.output
    assert "remove:" in res.output  # the bar ran
    lines = [seg for line in res.output.split("\n") for seg in line.split("\r")]
    said = [seg for seg in lines if "invert them" in seg]
    assert len(said) == 1 and said[0].startswith("WARNING: "), said


def test_range_option(tmp_path):
    args = ["remove", str(MEDIA / "aac.mp4"), "--box", "100,80,60,40", *FAST]
    res = _run(*args, "--range", "10s:5", "-o", str(tmp_path / "o.mp4"))
    assert res.exit_code == 1 and "both sides in frames or both in seconds" in _one_line_error(res)
    res = _run(*args, "--range", "40:", "-o", str(tmp_path / "o.mp4"))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_output_equal_to_input(tmp_path):
    src = tmp_path / "in.mp4"
    shutil.copyfile(MEDIA / "aac.mp4", src)
    res = _run("remove", str(src), "--box", "0,0,8,8", "-o", str(src), "--overwrite", *FAST)
    assert res.exit_code == 1 and "is the input" in _one_line_error(res)
    assert src.read_bytes() == (MEDIA / "aac.mp4").read_bytes()


def test_bad_config_value_exits_1(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("masks: {dilate: 3}\n")
    res = _run(
        "remove",
        str(MEDIA / "aac.mp4"),
        "--box",
        "0,0,8,8",
        "-o",
        str(tmp_path / "o.mp4"),
        "--config",
        str(cfg),
    )
    assert res.exit_code == 1 and "did you mean 'dilate_px'" in _one_line_error(res)


def test_debug_reraises(tmp_path):
    res = runner.invoke(
        app,
        [
            "--debug",
            "remove",
            str(tmp_path / "nope.mp4"),
            "--box",
            "0,0,8,8",
            "-o",
            str(tmp_path / "o.mp4"),
        ],
    )
    assert res.exit_code == 1
    assert isinstance(res.exception, VideoOpenError)


def test_ctrl_c_exits_130_without_output(tmp_path, monkeypatch):
    import lama_video.pipeline as pipeline

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "composite", boom)
    out = tmp_path / "o.mp4"
    res = _run("remove", str(MEDIA / "aac.mp4"), "--box", "0,0,8,8", "-o", str(out), *FAST)
    assert res.exit_code == 130
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("temporal", ["--temporal", "--no-temporal"])
def test_remove_with_the_lama_engine_end_to_end(tmp_path, temporal):
    parity = Path(__file__).parent / "fixtures" / "lama-parity"
    model = tmp_path / "big-lama"
    (model / "models").mkdir(parents=True)
    shutil.copy(parity / "config.yaml", model / "config.yaml")
    shutil.copy(parity / "tiny_generator.pt", model / "models" / "best.ckpt")
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "remove",
            str(MEDIA / "aac.mp4"),
            "--box",
            "100,80,60,40",
            "-o",
            str(out),
            "--engine",
            "lama",
            "--model",
            str(model),
            temporal,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "lama" in res.output.splitlines()[-1]  # "wrote ... (45 frames, <engine>, ...)"
    assert "45 frames" in res.output
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 45
    from lama_video.video import open_video, read_image

    with open_video(MEDIA / "aac.mp4") as r:
        first = next(iter(r.frames())).rgb
    got = read_image(frames[0])
    assert np.array_equal(got[:70], first[:70])  # far above the box: untouched
    assert np.abs(got[85:115, 105:155].astype(int) - first[85:115, 105:155]).mean() > 1


def test_auto_engine_without_weights_never_imports_torch(tmp_path):
    """`--engine auto` looks for LaMa weights before loading anything: a run that falls back to
    the exemplar engine (no weights installed) and `weights list` must not pay for importing
    torch."""
    import os
    import subprocess
    import sys

    out = tmp_path / "out.mp4"
    code = (
        "import sys\n"
        "from lama_video.cli._app import main\n"
        "sys.argv = ['lama-video', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "LAMA_VIDEO_HOME": str(tmp_path / "no-weights")}
    for args in (
        ["-q", "remove", str(MEDIA / "aac.mp4"), "--box", "10,10,20,20", "-o", str(out)],
        ["weights", "list"],
    ):
        res = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert res.returncode == 0 and "ok" in res.stdout, (args, res.stdout, res.stderr)


# ----------------------------------------------------------------------- reading the CLI


def test_global_flags_work_after_the_subcommand(tmp_path):
    out = tmp_path / "o.mp4"
    args = ["remove", str(MEDIA / "aac.mp4"), "--box", "10,10,50,40", "-o", str(out), *FAST]
    res = runner.invoke(app, [*args, "--quiet"])
    assert res.exit_code == 0, res.output
    assert "frames/s" not in res.output  # -q: no summary line, no bar
    loud = runner.invoke(app, [*args, "--overwrite"])
    assert loud.exit_code == 0 and "frames/s" in loud.output
    # --debug after the subcommand re-raises (a traceback instead of the one-line error)
    bad = runner.invoke(
        app,
        [
            "remove",
            str(tmp_path / "missing.mp4"),
            "--box",
            "1,1,2,2",
            "-o",
            str(tmp_path / "x.mp4"),
            "--debug",
        ],
    )
    assert bad.exit_code == 1 and bad.exception is not None
    assert not isinstance(bad.exception, SystemExit)


def test_hoisting_stops_at_double_dash():
    from lama_video.cli._app import hoist_global_flags

    assert hoist_global_flags(["remove", "a", "-q", "--", "-v"]) == [
        "-q",
        "remove",
        "a",
        "--",
        "-v",
    ]


@pytest.mark.parametrize("command", ["remove", "mask", "image", "batch", "ui", "finetune"])
def test_help_uses_click_metavars(command):
    res = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    options = res.output.split("Options:", 1)[1]
    for python_type in ("<bool>", "<str>", "<int>", "<float>", "<list[", "<path>"):
        assert python_type not in options, (command, python_type)
    assert "``" not in res.output


def test_help_lists_choices_and_library_defaults():
    from lama_video.config import RunConfig

    res = runner.invoke(app, ["remove", "--help"], terminal_width=200)
    assert "--engine [auto|lama|exemplar|telea|ns]" in res.output
    assert "--precision [auto|fp32|fp16|bf16]" in res.output
    assert "--keyframe-mask FRAME:PATH" in res.output and "--box X,Y,W,H" in res.output
    defaults = RunConfig()
    assert f"default {defaults.masks.dilate_px};" in res.output
    assert f"default {defaults.encode.crf})" in res.output
    assert f"default {defaults.encode.codec})" in res.output


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--engine", "lamma"),
        ("--device", "gpu"),
        ("--precision", "fp8"),
        ("--audio", "mp3"),
        ("--device", "cuda:x"),
    ],
)
def test_bad_choices_are_usage_errors(tmp_path, flag, value):
    res = _run(
        "remove",
        str(MEDIA / "aac.mp4"),
        "--box",
        "1,1,9,9",
        "-o",
        str(tmp_path / "o.mp4"),
        flag,
        value,
    )
    assert res.exit_code == 2, res.output
    assert value in res.output and "is not one of" in res.output
    assert not (tmp_path / "o.mp4").exists()


def test_help_imports_no_media_or_array_library() -> None:
    """``lama-video --help`` loads the CLI only: OpenCV, PyAV, NumPy and torch load when a
    command runs (they were most of its start-up time), and so do tqdm and PyYAML (another 50 ms:
    --help went from 0.21 s to 0.14 s without them)."""
    import subprocess
    import sys

    heavy = ("cv2", "av", "numpy", "torch", "scipy", "tqdm", "yaml")
    code = (
        "import sys, lama_video.cli._app as a; a.load_commands(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_help_lists_the_commands_without_importing_them() -> None:
    """``lama-video --help`` lists the commands from a table (0.15 s -> 0.09 s here) and imports
    none of them; the table holds every command and says what its own help says."""
    import subprocess
    import sys

    import typer.main

    from lama_video.cli._app import COMMANDS, load_commands

    code = (
        "import sys; sys.argv = ['lama-video', '--help']\n"
        "from lama_video.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('lama_video.cli.')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip().splitlines()[-1] == "['lama_video.cli._app']", run.stdout
    for name in COMMANDS:
        assert f"\n  {name} " in run.stdout, run.stdout
    typo = runner.invoke(app, ["remov"])
    assert typo.exit_code == 2 and "Did you mean 'remove'?" in typo.output, typo.output
    load_commands()
    real = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(real) == set(COMMANDS)  # (the help lists them in the order of COMMANDS)
    for name, (_module, text) in COMMANDS.items():
        assert (real[name].help or "").split("\n\n")[0] == text, name


def test_remove_start_does_not_import_scipy() -> None:
    """``remove`` reaches its first frame without SciPy (0.2-0.3 s of imports): the sparse solver
    loads when a hole first needs it."""
    import subprocess
    import sys

    code = (
        "import sys, lama_video.pipeline, lama_video.temporal, lama_video.engines.exemplar, "
        "lama_video.flow_completion; print('scipy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
