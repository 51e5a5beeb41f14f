"""The attack catalogue: what a careless or hostile user tried, kept as tests so it keeps holding.

Each test names the attack (bad media, bad masks, bad flags and configs, interrupts, hostile
checkpoints, a hostile local web client) and checks the promise: a clear one-line error and exit
status 1 (or the HTTP status the page needs), nothing run from an untrusted file, no input
modified, nothing written outside where it should be, no half-written output left behind.
The small helpers at the top build the hostile files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from torch import Tensor, nn
from typer.testing import CliRunner

from lama_video.cli import app
from lama_video.config import RunConfig, load_config
from lama_video.errors import ConfigError, EncodeError, MaskError, WeightsError
from lama_video.model.weights import load_model
from lama_video.outputs import MARKER, partial_prefix, remove_stale_partials
from lama_video.video import write_png

ROOT = Path(__file__).resolve().parent
MEDIA = ROOT / "fixtures" / "media"
PARITY = ROOT / "fixtures" / "lama-parity"
CLIP = MEDIA / "aac.mp4"  # 320x240, 45 frames, AAC
FAST = ["--engine", "telea", "--no-temporal", "--preset", "ultrafast"]
runner = CliRunner()


# ------------------------------------------------------------------------------------- helpers


def run(*args: str) -> Any:
    return runner.invoke(app, ["-q", *args])


def one_line_error(result: Any) -> str:
    """The last output line, which must be the one-line error (no traceback)."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[-1]


def digest(path: Path) -> str:
    """Content digest of a file, or of a folder tree (names and bytes)."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def write_mask(
    path: Path,
    w: int = 320,
    h: int = 240,
    box: tuple[int, int, int, int] | None = (100, 80, 60, 50),
    value: int = 255,
) -> Path:
    """A grey PNG mask, ``value`` inside ``box`` (x, y, w, h) or everywhere when None."""
    m = np.zeros((h, w), np.uint8) if box is not None else np.full((h, w), value, np.uint8)
    if box is not None:
        x, y, bw, bh = box
        m[y : y + bh, x : x + bw] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), m)
    return path


def frames_folder(folder: Path, n: int = 6, w: int = 64, h: int = 48) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        write_png(folder / f"{i:05d}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return folder


def evil_torchscript(path: Path, target: Path) -> Path:
    """A TorchScript file whose ``__setstate__`` writes "pwned" into ``target`` when loaded."""
    code = f"""
import torch
from torch import Tensor, nn


class Evil(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> tuple[Tensor, bool]:
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[Tensor, bool]) -> None:
        f = torch.from_file({str(target)!r}, True, 5, dtype=torch.uint8)
        f.copy_(torch.tensor([112, 119, 110, 101, 100], dtype=torch.uint8))
        self.w = state[0]
        self.training = state[1] and bool(f.sum() > 0)


torch.jit.save(torch.jit.script(Evil()), {str(path)!r})
"""
    # TorchScript compiles from source files: build the module in a child process.
    script = path.with_suffix(".build.py")
    script.write_text(code)
    subprocess.run([sys.executable, "-W", "ignore", str(script)], check=True)
    script.unlink()
    return path


class _JitWrapper(nn.Module):
    """What LaMa's bin/to_jit.py exports: JITWrapper(model=training module with .generator)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.generator = generator

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        pred = self.model.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * pred + (1 - mask) * image


def big_lama_pt(path: Path) -> Path:
    """A traced export of the parity generator in IOPaint's big-lama.pt layout."""
    generator = load_model(PARITY / "tiny_generator.pt").module
    example = (torch.rand(1, 3, 120, 120), torch.rand(1, 1, 120, 120))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(_JitWrapper(generator), example), str(path))
    return path


# ------------------------------------------------------------- severe 1: TorchScript runs code


def test_evil_torchscript_attack_is_real(tmp_path: Path) -> None:
    """The helper builds a real attack: torch.jit.load (what --trust-checkpoint allows) runs it."""
    target = tmp_path / "written-by-the-model.txt"
    evil = evil_torchscript(tmp_path / "evil.pt", target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(evil))
    assert target.read_bytes() == b"pwned"


def test_torchscript_is_never_run_without_trust(tmp_path: Path) -> None:
    target = tmp_path / "written-by-the-model.txt"
    evil = evil_torchscript(tmp_path / "evil.pt", target)
    img, mask, out = tmp_path / "img.png", tmp_path / "m.png", tmp_path / "o.png"
    write_png(img, np.full((48, 64, 3), 128, np.uint8))
    write_mask(mask, 64, 48, (10, 10, 20, 20))
    res = run(
        "image",
        str(img),
        "--mask",
        str(mask),
        "-o",
        str(out),
        "--model",
        str(evil),
        "--engine",
        "lama",
    )
    line = one_line_error(res)
    assert "TorchScript" in line and "--trust-checkpoint" in line
    assert not target.exists() and not out.exists()

    frames = frames_folder(tmp_path / "frames", n=4, w=64, h=64)
    res = run(
        "finetune",
        "--arch",
        "tiny",
        "--model",
        str(evil),
        "--data",
        str(frames),
        "-o",
        str(tmp_path / "run"),
        "--steps",
        "1",
        "--crop",
        "32",
        "--device",
        "cpu",
        "--hrf-weight",
        "0",
        "--val-frames",
        "0",
    )
    assert res.exit_code == 1, res.output
    assert not target.exists()

    with pytest.raises(WeightsError, match="--trust-checkpoint"):
        load_model(evil)
    assert not target.exists()


def test_torchscript_big_lama_export_loads_as_plain_weights(tmp_path: Path) -> None:
    """IOPaint's big-lama.pt layout (model.generator.*) becomes our generator without running."""
    path = big_lama_pt(tmp_path / "big-lama.pt")
    loaded = load_model(path)
    assert loaded.kind == "generator" and loaded.arch is not None and loaded.arch.ngf == 16
    ref = load_model(PARITY / "tiny_generator.pt")
    x = torch.rand(1, 3, 64, 88)
    m = (torch.rand(1, 1, 64, 88) > 0.6).float()
    with torch.no_grad():
        assert torch.equal(loaded.inpaint(x, m), ref.inpaint(x, m))


def test_registry_torchscript_is_checked_on_every_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from lama_video.model import registry

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("LAMA_VIDEO_HOME", str(cache))
    path = big_lama_pt(cache / "big-lama.pt")
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    spec = dataclasses.replace(registry.REGISTRY["big-lama-torchscript"], md5=md5)
    monkeypatch.setitem(registry.REGISTRY, "big-lama-torchscript", spec)
    assert load_model("big-lama-torchscript").kind == "generator"
    # The cached file is swapped for another one later: refused at the next load.
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))
    with pytest.raises(WeightsError, match="does not match the registry's checksum"):
        load_model("big-lama-torchscript")


# ------------------------------------------------------ severe 2: mask -o ... --overwrite


@pytest.fixture()
def mask_job(tmp_path: Path) -> dict[str, Path]:
    frames = frames_folder(tmp_path / "frames", n=4)
    key = write_mask(tmp_path / "key.png", 64, 48, (20, 14, 16, 12))
    video = tmp_path / "in.mp4"
    shutil.copyfile(CLIP, video)
    return {"frames": frames, "key": key, "video": video, "vkey": write_mask(tmp_path / "vk.png")}


def test_mask_overwrite_never_deletes_the_input_video(mask_job: dict[str, Path]) -> None:
    video = mask_job["video"]
    before = digest(video)
    res = run(
        "mask",
        str(video),
        "--keyframe-mask",
        f"0:{mask_job['vkey']}",
        "-o",
        str(video),
        "--overwrite",
    )
    assert "is the input" in one_line_error(res)
    assert video.is_file() and digest(video) == before


def test_mask_overwrite_never_replaces_the_input_frames(mask_job: dict[str, Path]) -> None:
    frames, key = mask_job["frames"], mask_job["key"]
    before = digest(frames)
    res = run("mask", str(frames), "--keyframe-mask", f"0:{key}", "-o", str(frames), "--overwrite")
    assert "is the input" in one_line_error(res)
    assert digest(frames) == before
    # Nor the keyframe file, nor a folder holding it.
    res = run("mask", str(frames), "--keyframe-mask", f"0:{key}", "-o", str(key), "--overwrite")
    one_line_error(res)
    res = run(
        "mask", str(frames), "--keyframe-mask", f"0:{key}", "-o", str(key.parent), "--overwrite"
    )
    assert "holds the input" in one_line_error(res) or "is the input" in res.output
    assert digest(frames) == before and key.is_file()


def test_mask_overwrite_never_deletes_an_unrelated_folder(
    mask_job: dict[str, Path], tmp_path: Path
) -> None:
    home = tmp_path / "somedir"
    (home / "sub").mkdir(parents=True)
    (home / "thesis.txt").write_text("four years of work")
    (home / "sub" / "notes.md").write_text("notes")
    shutil.copyfile(CLIP, home / "holiday.mp4")
    # A folder of numbered PNGs that lama-video did not write is not replaced either.
    pngs = frames_folder(tmp_path / "someone_elses_frames", n=2)
    for target in (home, pngs):
        before = digest(target)
        res = run(
            "mask",
            str(mask_job["frames"]),
            "--keyframe-mask",
            f"0:{mask_job['key']}",
            "-o",
            str(target),
            "--overwrite",
        )
        assert "did not write" in one_line_error(res)
        assert digest(target) == before


def test_mask_overwrite_replaces_its_own_folder(mask_job: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "masks"
    args = [
        "mask",
        str(mask_job["frames"]),
        "--keyframe-mask",
        f"0:{mask_job['key']}",
        "-o",
        str(out),
    ]
    assert run(*args).exit_code == 0
    assert (out / MARKER).is_file() and len(list(out.glob("*.png"))) == 4
    assert "already exists" in one_line_error(run(*args))
    res = run(*args, "--overwrite")
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*.png"))) == 4
    assert not list(tmp_path.glob(".masks.*"))  # no temporary folder left


# ---------------------------------------------------- medium 4: remove -o MASKDIR --overwrite


def test_remove_never_replaces_the_mask_source(tmp_path: Path) -> None:
    frames = frames_folder(tmp_path / "frames", n=4)
    masks = tmp_path / "masks"
    for i in range(4):
        write_mask(masks / f"{i:05d}.png", 64, 48, (20, 14, 16, 12))
    before = digest(masks)
    res = run("remove", str(frames), "--mask", str(masks), "-o", str(masks), "--overwrite", *FAST)
    assert "is the input" in one_line_error(res)
    assert digest(masks) == before
    key = masks / "00000.png"
    res = run(
        "remove", str(frames), "--keyframe-mask", f"0:{key}", "-o", str(masks), "--overwrite", *FAST
    )
    one_line_error(res)
    assert digest(masks) == before
    # The image command: the output may not be the mask.
    img = tmp_path / "img.png"
    write_png(img, np.full((48, 64, 3), 90, np.uint8))
    res = run(
        "image", str(img), "--mask", str(key), "-o", str(key), "--overwrite", "--engine", "telea"
    )
    assert "is the input" in one_line_error(res)
    assert digest(masks) == before


def test_batch_job_output_may_not_be_its_mask(tmp_path: Path) -> None:
    from lama_video.batching import batch

    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(CLIP, src / "a.mp4")
    mask = write_mask(src / "a_mask.png")
    job_file = tmp_path / "jobs.yaml"
    job_file.write_text(
        f"allow_outputs_outside_outdir: true\njobs:\n  - input: {src / 'a.mp4'}\n"
        f"    mask: {mask}\n    output: {mask}\n"
    )
    before = digest(mask)
    report = batch(
        job_file,
        tmp_path / "out",
        overwrite=True,
        config=RunConfig().replace(
            {"inpaint": {"engine": "telea"}, "temporal": {"enabled": False}}
        ),
    )
    assert not report.ok and "is the input" in report.results[0].error
    assert digest(mask) == before


# --------------------------------------------------------- severe 3: the UI's Save and symlinks


@pytest.fixture()
def ui(tmp_path: Path):
    """A session with a (small, real) result to save, served on 127.0.0.1."""
    from lama_video.ui import Session, UiServer

    folder = tmp_path / "project"
    folder.mkdir()
    clip = folder / "clip.mp4"
    shutil.copyfile(CLIP, clip)
    session = Session(clip, config=RunConfig().replace({"inpaint": {"engine": "telea"}}))
    session.start()
    result = session.work / "result"
    (result / "masks" / "keyframes").mkdir(parents=True)
    shutil.copyfile(CLIP, result / session.result_name)
    for name in ("000000.png", "keyframes/000000.png"):
        write_mask(result / "masks" / name)
    (result / "meta.json").write_text(json.dumps({"digest": "x", "frames": 1}))
    server = UiServer(session, 0)
    server.start_in_thread()
    outside = tmp_path / "outside"
    outside.mkdir()
    yield {"session": session, "server": server, "folder": folder, "outside": outside}
    server.stop()


def call(
    server: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(server.url.rstrip("/") + path, data=data, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_ui_save_does_not_follow_a_planted_folder_symlink(ui: dict[str, Any]) -> None:
    folder, outside = ui["folder"], ui["outside"]
    (folder / "mk").mkdir()
    (folder / "mk" / "keyframes").symlink_to(outside, target_is_directory=True)
    status, body = call(ui["server"], "POST", "/api/save", {"masks": "mk", "overwrite": True})
    assert status == 403, body
    assert list(outside.iterdir()) == []
    # A symlinked folder itself, and a path through one, are refused as well.
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    for target in ("linked", "linked/masks", "linked/out.mp4"):
        key = "output" if target.endswith(".mp4") else "masks"
        status, _ = call(ui["server"], "POST", "/api/save", {key: target, "overwrite": True})
        assert status == 403, target
    assert list(outside.iterdir()) == []


def test_ui_save_does_not_follow_planted_file_symlinks(ui: dict[str, Any]) -> None:
    folder, outside = ui["folder"], ui["outside"]
    victim = outside / "v.mp4"
    victim.write_bytes(b"not yours")
    # The old predictable temporary name, planted as a link out of the folder.
    (folder / ".saved.mp4.lama-ui-tmp").symlink_to(victim)
    status, body = call(ui["server"], "POST", "/api/save", {"output": "saved.mp4"})
    assert status == 200, body
    assert victim.read_bytes() == b"not yours"
    assert (folder / "saved.mp4").stat().st_size > 1000
    # A mask file planted as a link to a precious file in the allowed folder.
    precious = folder / "precious.txt"
    precious.write_text("precious")
    (folder / "mk2").mkdir()
    (folder / "mk2" / "000000.png").symlink_to(precious)
    status, _ = call(ui["server"], "POST", "/api/save", {"masks": "mk2", "overwrite": True})
    assert status == 403
    assert precious.read_text() == "precious"
    # The output video as a link to the precious file: refused, nothing replaced.
    (folder / "out.mp4").symlink_to(precious)
    status, _ = call(ui["server"], "POST", "/api/save", {"output": "out.mp4", "overwrite": True})
    assert status == 403 and precious.read_text() == "precious"


def test_ui_save_type_checks_its_fields(ui: dict[str, Any]) -> None:
    folder = ui["folder"]
    existing = folder / "clean.mp4"
    existing.write_bytes(b"user's file")
    for body in (
        {"output": "clean.mp4", "overwrite": "false"},
        {"output": "clean.mp4", "overwrite": 1},
        {"output": ["clean.mp4"]},
        {"output": {"a": 1}},
        {"masks": 5},
        {"output": "clean\x00.mp4", "overwrite": True},
        {"output": "clean.mp4", "overwrite": True, "extra": 1},
    ):
        status, answer = call(ui["server"], "POST", "/api/save", body)
        assert status == 400, (body, answer)
    assert existing.read_bytes() == b"user's file"
    status, _ = call(ui["server"], "POST", "/api/save", {"output": "clean.mp4", "overwrite": True})
    assert status == 200 and existing.read_bytes() != b"user's file"


def test_ui_save_overwrite_replaces_only_its_own_masks_folder(ui: dict[str, Any]) -> None:
    folder = ui["folder"]
    status, _ = call(ui["server"], "POST", "/api/save", {"masks": "m"})
    assert status == 200 and (folder / "m" / MARKER).is_file()
    status, _ = call(ui["server"], "POST", "/api/save", {"masks": "m", "overwrite": True})
    assert status == 200
    assert sorted(p.name for p in (folder / "m").rglob("*.png")) == ["000000.png"] * 2
    mine = folder / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("mine")
    status, _ = call(ui["server"], "POST", "/api/save", {"masks": "mine", "overwrite": True})
    assert status == 403 and (mine / "thesis.txt").read_text() == "mine"


def test_ui_does_not_serve_planted_symlinks(ui: dict[str, Any], tmp_path: Path) -> None:
    session = ui["session"]
    secret = tmp_path / "secret.jpg"
    _, jpg = cv2.imencode(".jpg", np.full((8, 8, 3), 7, np.uint8))
    secret.write_bytes(jpg.tobytes())
    status, _ = call(ui["server"], "GET", "/api/frame/5.jpg")
    assert status == 200
    proxy = session.work / "proxy" / "000005.jpg"
    proxy.unlink()
    proxy.symlink_to(secret)
    status, body = call(ui["server"], "GET", "/api/frame/5.jpg")
    assert status == 403 and secret.read_bytes() not in body
    # A painted mask planted as a link to a file outside is not read either.
    kf = session.work / "keyframes" / "000003.png"
    kf.symlink_to(write_mask(tmp_path / "outside-mask.png"))
    status, _ = call(ui["server"], "GET", "/api/mask/3.png")
    assert status == 404


def test_ui_checks_an_upload_size_before_decoding_it(
    ui: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import lama_video.ui.session as session_mod

    decoded: list[int] = []
    real = session_mod.cv2.imdecode

    def counting(*args: Any, **kwargs: Any) -> Any:
        decoded.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(session_mod.cv2, "imdecode", counting)
    # A PNG header claiming 16000x9014 (the real attack was a 560 KB PNG that decoded to 1.3 GB).
    ihdr = (16000).to_bytes(4, "big") + (9014).to_bytes(4, "big") + b"\x08\x00\x00\x00\x00"
    png = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + ihdr + b"\x00" * 4096
    status, body = call(ui["server"], "PUT", "/api/mask/0", png, {"Content-Type": "image/png"})
    assert status == 400 and b"far larger" in body
    assert decoded == []


def test_ui_connections_time_out() -> None:
    from lama_video.ui.server import _Handler

    # socketserver.StreamRequestHandler applies this to every accepted connection.
    assert 0 < _Handler.timeout <= 60


# -------------------------------------------------------------- medium 5: one line, not a trace


def test_unwritable_output_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import tempfile

    import lama_video.video.writer as video_mod

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full_disk)
    out = tmp_path / "o.mp4"
    res = run("remove", str(CLIP), "--box", "10,10,40,40", "-o", str(out), *FAST)
    monkeypatch.undo()
    assert "No space left on device" in one_line_error(res)
    assert not out.exists()

    # The disk fills up while the container's trailer is written (at close).
    real_publish = video_mod.publish

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(video_mod, "publish", read_only)
    res = run("remove", str(CLIP), "--box", "10,10,40,40", "-o", str(out), *FAST)
    assert "Read-only file system" in one_line_error(res)
    monkeypatch.setattr(video_mod, "publish", real_publish)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b"encode:\n  crf: 20\n  preset: \xff\xfe\n", "not UTF-8"),
        (b"encode:\n  pix_fmt: bogus\n", "pix_fmt"),
        (b"temporal:\n  smoothing_strength: .nan\n", "finite"),
        (b"temporal:\n  smoothing_strength: .inf\n", "finite"),
    ],
)
def test_bad_config_files_are_one_line(tmp_path: Path, text: bytes, match: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(text)
    with pytest.raises(ConfigError, match=match):
        load_config(cfg)
    res = run(
        "remove",
        str(CLIP),
        "--box",
        "10,10,40,40",
        "-o",
        str(tmp_path / "o.mp4"),
        "--config",
        str(cfg),
        *FAST,
    )
    assert match in one_line_error(res)


def test_frames_smaller_than_dis_minimum(tmp_path: Path) -> None:
    frames = frames_folder(tmp_path / "tiny", n=5, w=10, h=9)
    mask = write_mask(tmp_path / "m.png", 10, 9, (3, 3, 3, 3))
    out = tmp_path / "out"
    res = run(
        "remove",
        str(frames),
        "--mask",
        str(mask),
        "-o",
        str(out),
        "--engine",
        "telea",
        "--dilate",
        "0",
    )
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*.png"))) == 5
    res = run("mask", str(frames), "--keyframe-mask", f"0:{mask}", "-o", str(tmp_path / "mk"))
    assert res.exit_code == 0, res.output


def test_manifest_entry_that_is_not_a_mapping(tmp_path: Path) -> None:
    from lama_video.batching import MANIFEST_NAME, Manifest

    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"version": 1, "jobs": {"a.mp4": 5}}))
    with pytest.raises(ConfigError, match="not a mapping"):
        Manifest(tmp_path)


# ---------------------------------------------------------------- medium 6: SIGTERM and SIGKILL


def _slow_remove_cmd(out: Path, masks: Path | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "lama_video",
        "-q",
        "remove",
        str(ROOT.parent / "samples" / "clip.mp4"),
        "--box",
        "100,60,80,80",
        "-o",
        str(out),
        "--engine",
        "telea",
        "--preset",
        "veryslow",
    ]


def _wait_for_partial(out: Path, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    t0 = time.monotonic()
    while not list(out.parent.glob(f".{out.name}.partial-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout_s, "no partial output appeared"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the run


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(_slow_remove_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_partial(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert b"terminated" in err and b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_rerun_removes_partials_of_a_killed_run(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        _slow_remove_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_for_partial(out, proc)
    proc.kill()
    proc.wait(30)
    stale = list(tmp_path.glob(".out.mp4.partial-*"))
    assert stale, "SIGKILL leaves the partial (nothing can clean up in the process itself)"
    # A live run's partial (this process) and one of another machine are left alone.
    mine = tmp_path / (partial_prefix(out) + "live.mp4")
    mine.write_bytes(b"")
    other = tmp_path / ".out.mp4.partial-1.00000000-x.mp4"
    other.write_bytes(b"")
    res = run("remove", str(CLIP), "--box", "10,10,40,40", "-o", str(out), *FAST)
    assert res.exit_code == 0, res.output
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([other.name, mine.name, "out.mp4"])
    assert remove_stale_partials(out) == []


# -------------------------------------------------------- medium 7: every mask's size up front


def test_wrong_size_last_mask_fails_before_any_work(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    for i in range(45):
        write_mask(masks / f"{i:05d}.png", *((321, 240) if i == 44 else (320, 240)))
    from lama_video.masks import load_masks

    with pytest.raises(MaskError, match=r"00044\.png.*321x240"):
        load_masks(masks, width=320, height=240, n_frames=45)
    out = tmp_path / "o.mp4"
    res = run("remove", str(CLIP), "--mask", str(masks), "-o", str(out), *FAST)
    assert "00044.png" in one_line_error(res) and not out.exists()
    # JPEG masks (baseline and progressive) too, read from their headers.
    for i, prog in ((3, 0), (44, 1)):
        img = np.zeros((240, 321 if i == 44 else 320), np.uint8)
        cv2.imwrite(str(masks / f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_PROGRESSIVE, prog])
    from lama_video.masks import mask_file_size

    assert mask_file_size(masks / "00003.jpg") == (320, 240)
    assert mask_file_size(masks / "00044.jpg") == (321, 240)


# ------------------------------------------------------ medium 8: whole-frame and empty holes


def test_whole_frame_holes(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    res = run("remove", str(CLIP), "--box", "0,0,400,300", "-o", str(out), *FAST)
    assert "whole" in one_line_error(res) and not out.exists()
    white = write_mask(tmp_path / "white.png", box=None)
    res = run("remove", str(CLIP), "--mask", str(white), "-o", str(out), *FAST)
    assert "whole" in one_line_error(res) and not out.exists()
    folder = tmp_path / "white"
    for i in range(45):
        write_mask(folder / f"{i:05d}.png", box=None)
    res = run("remove", str(CLIP), "--mask", str(folder), "-o", str(out), *FAST)
    assert "whole frame in all 45 frames" in one_line_error(res) and not out.exists()


def test_some_whole_frame_holes_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "masks"
    for i in range(45):
        write_mask(folder / f"{i:05d}.png", box=None if i < 3 else (100, 80, 40, 40))
    from lama_video.pipeline import remove_object

    out = tmp_path / "o.mp4"
    cfg = RunConfig().replace({"inpaint": {"engine": "telea"}, "temporal": {"enabled": False}})
    remove_object(CLIP, folder, out, config=cfg)
    assert out.is_file()
    assert any("3 of 45 frames are fully masked" in r.getMessage() for r in caplog.records)


def test_all_black_masks_are_an_error_like_one_black_image(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    black = write_mask(tmp_path / "black.png", value=0, box=None)
    assert "empty" in one_line_error(
        run("remove", str(CLIP), "--mask", str(black), "-o", str(out), *FAST)
    )
    folder = tmp_path / "black"
    for i in range(45):
        write_mask(folder / f"{i:05d}.png", value=0, box=None)
    res = run("remove", str(CLIP), "--mask", str(folder), "-o", str(out), *FAST)
    assert "every one of the 45 masks is empty" in one_line_error(res)
    assert not out.exists() and list(tmp_path.glob(".o.mp4*")) == []


# ---------------------------------------------------------------- medium 9: resource bounds


def test_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    archive = tmp_path / "big-lama.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big-lama/config.yaml", (PARITY / "config.yaml").read_text())
        with zf.open("big-lama/models/best.ckpt", "w", force_zip64=True) as fh:
            chunk = bytes(1 << 20)
            for _ in range(256):  # 256 MiB of zeros in a ~0.3 MB archive
                fh.write(chunk)
    assert archive.stat().st_size < 2 << 20
    t0 = time.perf_counter()
    with pytest.raises(WeightsError, match="would unpack to 256 MiB"):
        load_model(archive)
    assert time.perf_counter() - t0 < 5


# ------------------------------------------------------------------------ medium 10: messages


def test_blocked_pickle_global_is_reported_as_unsafe(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("echo attacked",))

    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "x": Payload()}, path)
    with pytest.raises(WeightsError) as info:
        load_model(path)
    text = str(info.value)
    assert "refused as unsafe" in text and "--trust-checkpoint" in text
    assert "corrupt" not in text and "download it again" not in text


def test_truncated_mkv_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from lama_video.video import open_video

    data = (MEDIA / "opus.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 4 // 10])
    with open_video(cut) as reader:
        n = sum(1 for _ in reader.frames())
    assert 0 < n < 45
    warned = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert warned and f"after {n} frames" in warned[0]
    caplog.clear()
    with open_video(MEDIA / "opus.mkv") as reader:
        assert sum(1 for _ in reader.frames()) == 45
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]


def test_nan_weights_fail_clearly(tmp_path: Path) -> None:
    from lama_video.engines.lama import Inpainter

    state = {
        k: v.clone()
        for k, v in load_model(PARITY / "tiny_generator.pt").module.state_dict().items()
    }
    key = next(k for k in state if k.endswith("weight") and state[k].dtype == torch.float32)
    state[key].fill_(float("nan"))
    path = tmp_path / "nan.pt"
    torch.save(state, path)
    inpainter = Inpainter(load_model(path))
    frames = np.full((1, 48, 64, 3), 100, np.uint8)
    masks = np.zeros((1, 48, 64), bool)
    masks[0, 10:30, 10:30] = True
    with pytest.raises(WeightsError, match="non-finite"):
        inpainter(frames, masks)


# -------------------------------------------------------------- medium 11: batch outside OUTDIR


@pytest.mark.parametrize("output", ["../x.mp4", "/tmp/lama-video-elsewhere.mp4", "a/../../y.mp4"])
def test_batch_outputs_outside_outdir_need_the_job_file_to_say_so(
    tmp_path: Path, output: str
) -> None:
    from lama_video.batching import OUTSIDE_KEY, read_job_file

    shutil.copyfile(CLIP, tmp_path / "a.mp4")
    write_mask(tmp_path / "a_mask.png")
    entry = f"jobs:\n  - input: a.mp4\n    mask: a_mask.png\n    output: {output}\n"
    job_file = tmp_path / "jobs.yaml"
    job_file.write_text(entry)
    with pytest.raises(ConfigError, match=OUTSIDE_KEY):
        read_job_file(job_file, tmp_path / "out")
    job_file.write_text(f"{OUTSIDE_KEY}: true\n{entry}")
    (job,) = read_job_file(job_file, tmp_path / "out")
    assert not job.output.resolve().is_relative_to((tmp_path / "out").resolve())
    job_file.write_text(f"{OUTSIDE_KEY}: 'yes'\n{entry}")
    with pytest.raises(ConfigError, match="true or false"):
        read_job_file(job_file, tmp_path / "out")


def test_output_check_refuses_in_every_spelling(tmp_path: Path) -> None:
    from lama_video.outputs import check_output

    src = tmp_path / "in.mp4"
    shutil.copyfile(CLIP, src)
    (tmp_path / "link.mp4").symlink_to(src)
    os.link(src, tmp_path / "hard.mp4")
    for spelling in (
        src,
        tmp_path / "link.mp4",
        tmp_path / "hard.mp4",
        tmp_path / "sub" / ".." / "in.mp4",
    ):
        with pytest.raises(EncodeError, match="is the input"):
            check_output(spelling, inputs=[src], kind="file", overwrite=True)
