"""The mask-painting page's server, tested in-process over HTTP (urllib) on a real clip.

Covers frame fetch, keyframe mask save/load, tracking, removal (one at a time: 409), save
(no overwrite without the flag, 403 outside the allowed folders), the loopback/host checks and
the ``lama-video ui`` command's start, stop and bad-input paths.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from overlay_helpers import burnt_sample
from typer.testing import CliRunner

from lama_video.cli import app
from lama_video.config import RunConfig
from lama_video.ui import Session, UiServer
from lama_video.video import open_video

CLIP = Path(__file__).parent / "fixtures" / "media" / "aac.mp4"  # 320x240, 45 frames, AAC
W, H, N = 320, 240, 45
FAST = RunConfig().replace({"inpaint": {"engine": "telea"}, "temporal": {"enabled": False}})
BOX = (slice(80, 160), slice(110, 210))  # rows, cols of the painted region (the digit)


class Client:
    """A tiny urllib client for one server."""

    def __init__(self, server: UiServer) -> None:
        self.base = server.url.rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, str]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        req = urllib.request.Request(self.base + path, data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers.get("Content-Type", "")

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        status, data, ctype = self.call(method, path, body)
        assert ctype == "application/json", (status, data[:200])
        return status, json.loads(data)


def painted_png(w: int = W, h: int = H) -> bytes:
    """An RGBA mask like the page's canvas sends: opaque colour over the box, transparent else."""
    rgba = np.zeros((h, w, 4), np.uint8)
    sy = slice(BOX[0].start * h // H, BOX[0].stop * h // H)
    sx = slice(BOX[1].start * w // W, BOX[1].stop * w // W)
    rgba[sy, sx] = (96, 48, 255, 255)
    return cv2.imencode(".png", rgba)[1].tobytes()


def decode(data: bytes, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert img is not None
    return img


def first_frames(path: Path, n: int) -> list[np.ndarray]:
    out = []
    with open_video(path) as r:
        for f in r.frames():
            out.append(f.rgb)
            if len(out) == n:
                break
    return out


def start(folder: Path, **kw: Any) -> tuple[Session, UiServer, Client]:
    clip = folder / "clip.mp4"
    if not clip.exists():
        shutil.copyfile(CLIP, clip)
    session = Session(clip, config=FAST, **kw)
    session.start()
    server = UiServer(session, 0)
    server.start_in_thread()
    return session, server, Client(server)


@pytest.fixture
def served(tmp_path: Path):
    session, server, client = start(tmp_path)
    yield session, client
    server.stop()


@pytest.fixture(scope="module")
def removed(tmp_path_factory: pytest.TempPathFactory):
    """One clip painted on frame 0, tracked, then removed (telea, per-frame) with two Remove
    requests sent at the same moment; shared by the track, remove and save tests (tracking is the
    slow part, so it runs once)."""
    folder = tmp_path_factory.mktemp("removed")
    session, server, client = start(folder)
    status, _, _ = client.call("PUT", "/api/mask/0", painted_png(), {"Content-Type": "image/png"})
    assert status == 200
    track_answer = client.json("POST", "/api/track")
    track_job = session.wait_job(300)
    track_info = client.json("GET", "/api/info")[1]
    barrier = threading.Barrier(2)
    answers: list[tuple[int, dict[str, Any]]] = []

    def post() -> None:
        barrier.wait()
        answers.append(client.json("POST", "/api/remove"))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    job = session.wait_job(300)
    yield {
        "session": session,
        "client": client,
        "track_answer": track_answer,
        "track_job": track_job,
        "track_info": track_info,
        "answers": answers,
        "job": job,
    }
    server.stop()


# ------------------------------------------------------------------------------------ frames


def test_info_and_frames_match_the_clip(served) -> None:
    session, client = served
    status, info = client.json("GET", "/api/info")
    assert status == 200
    assert (info["width"], info["height"], info["n_frames"]) == (W, H, N)
    assert (info["proxy_width"], info["proxy_height"]) == (W, H)  # below 960 px: not downscaled
    assert info["fps"] == pytest.approx(30000 / 1001)
    assert info["keyframes"] == [] and not info["track"]["available"]
    assert Path(info["defaults"]["output"]) == session.input.parent / "clip_removed.mp4"

    originals = first_frames(session.input, N)
    for i in (0, 22, N - 1):
        status, data, ctype = client.call("GET", f"/api/frame/{i}.jpg")
        assert (status, ctype) == (200, "image/jpeg")
        rgb = decode(data, cv2.IMREAD_COLOR)[..., ::-1]
        assert rgb.shape == (H, W, 3)
        # JPEG of the same frame, not a neighbour: small error against this frame.
        err = np.abs(rgb.astype(int) - originals[i]).mean()
        assert err < 4.0, (i, err)
    assert client.call("GET", f"/api/frame/{N}.jpg")[0] == 404
    assert client.call("GET", "/api/frame/-1.jpg")[0] == 404
    assert len(list((session.work / "proxy").glob("*.jpg"))) == N


def test_proxy_is_downscaled_and_reused(tmp_path: Path) -> None:
    session, server, client = start(tmp_path, proxy_max_side_px=160)
    try:
        info = client.json("GET", "/api/info")[1]
        assert (info["proxy_width"], info["proxy_height"]) == (160, 120)
        assert decode(client.call("GET", "/api/frame/5.jpg")[1]).shape[:2] == (120, 160)
    finally:
        server.stop()
    again = Session(session.input, config=FAST, proxy_max_side_px=160)
    again.start()
    assert again._proxy_thread is None and again.job_status()["proxy_ready"] == N  # reused
    again.close()


def test_static_page_and_host_checks(served) -> None:
    _, client = served
    status, html, ctype = client.call("GET", "/")
    assert status == 200 and ctype.startswith("text/html") and b"/static/app.js" in html
    assert client.call("GET", "/static/app.js")[0] == 200
    assert client.call("GET", "/static/style.css")[0] == 200
    assert client.call("GET", "/static/../session.py")[0] == 404
    assert client.call("GET", "/static/session.py")[0] == 404
    # DNS rebinding / cross-site requests are refused.
    assert client.call("GET", "/api/info", headers={"Host": "evil.example:80"})[0] == 403
    status, _, _ = client.call("POST", "/api/track", headers={"Origin": "http://evil.example"})
    assert status == 403
    assert client.call("GET", "/api/nothing")[0] == 404


def test_server_binds_loopback_only(served) -> None:
    session, _ = served
    server = UiServer(session, 0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


# ------------------------------------------------------------------------------------- masks


def test_mask_save_load_and_delete(served) -> None:
    session, client = served
    ctype = {"Content-Type": "image/png"}
    status, body, _ = client.call("PUT", "/api/mask/7", painted_png(), ctype)
    assert status == 200 and json.loads(body)["keyframes"] == [7]
    # On disk at once, at the video's size, 0/255, exactly the painted box.
    stored = decode((session.work / "keyframes" / "000007.png").read_bytes())
    expect = np.zeros((H, W), np.uint8)
    expect[BOX] = 255
    np.testing.assert_array_equal(stored, expect)
    # Read back for the page: RGBA, alpha = mask.
    status, data, ctype_back = client.call("GET", "/api/mask/7.png")
    assert (status, ctype_back) == (200, "image/png")
    np.testing.assert_array_equal(decode(data)[..., 3], expect)
    assert client.call("GET", "/api/mask/8.png")[0] == 404

    # A half-size canvas is scaled to the video's size.
    assert client.call("PUT", "/api/mask/9", painted_png(160, 120), ctype)[0] == 200
    half = decode((session.work / "keyframes" / "000009.png").read_bytes()) > 0
    assert half.shape == (H, W)
    assert (half ^ (expect > 0)).mean() < 0.01

    # Empty mask deletes the keyframe; DELETE too.
    empty = cv2.imencode(".png", np.zeros((H, W, 4), np.uint8))[1].tobytes()
    status, body, _ = client.call("PUT", "/api/mask/9", empty, ctype)
    assert status == 200 and json.loads(body)["kept"] is False
    assert client.call("DELETE", "/api/mask/7")[0] == 200
    assert session.keyframes() == []
    assert not list((session.work / "keyframes").iterdir())

    # Bad bodies.
    assert client.call("PUT", "/api/mask/1", b"not a png", ctype)[0] == 400
    wide = cv2.imencode(".png", np.zeros((100, 400, 4), np.uint8))[1].tobytes()
    status, body, _ = client.call("PUT", "/api/mask/1", wide, ctype)
    assert status == 400 and b"aspect ratio" in body
    assert client.call("PUT", f"/api/mask/{N}", painted_png(), ctype)[0] == 404


def test_masks_survive_a_restart_and_second_tab(tmp_path: Path) -> None:
    _, server, client = start(tmp_path)
    try:
        client.call("PUT", "/api/mask/3", painted_png(), {"Content-Type": "image/png"})
        rev = client.json("GET", "/api/job")[1]["rev"]
        other = Client(server)  # a second tab sees the same masks and the revision change
        assert other.json("GET", "/api/info")[1]["keyframes"] == [3]
        assert rev >= 1
    finally:
        server.stop()
    _, server2, client2 = start(tmp_path)
    try:
        assert client2.json("GET", "/api/info")[1]["keyframes"] == [3]
        assert client2.call("GET", "/api/mask/3.png")[0] == 200
    finally:
        server2.stop()


# ------------------------------------------------------------------------------------ jobs


def test_track_needs_a_painted_frame(served) -> None:
    _, client = served
    status, body = client.json("POST", "/api/track")
    assert status == 400 and "paint" in body["error"]
    status, body = client.json("POST", "/api/remove")
    assert status == 400 and "paint" in body["error"]


def test_cancel_stops_a_job_and_keeps_nothing(served) -> None:
    session, client = served
    client.call("PUT", "/api/mask/10", painted_png(), {"Content-Type": "image/png"})
    assert client.json("POST", "/api/track")[0] == 202
    status, body = client.json("POST", "/api/job/cancel")
    assert status == 200 and body["job"]["kind"] == "track"
    job = session.wait_job(60)
    assert job.state == "cancelled" and "nothing was replaced" in job.message
    assert not (session.work / "track").exists()
    assert not list(session.work.glob(".track*"))
    assert client.json("GET", "/api/job")[1]["job"]["state"] == "cancelled"


def test_track_writes_one_mask_per_frame(removed) -> None:
    session, client = removed["session"], removed["client"]
    status, body = removed["track_answer"]
    assert status == 202 and body["kind"] == "track"
    job = removed["track_job"]
    assert job.state == "done", job.message
    assert job.phase == "masks" and (job.done, job.total) == (N, N)
    track = removed["track_info"]["track"]
    assert track["available"] and track["fresh"]
    # The timeline's hints: the frames the tracker is least sure of, never a keyframe, least sure
    # first, as the tracking job's message says.
    meta = json.loads((session.work / "track" / "meta.json").read_text())
    conf = meta["confidence"]
    assert len(conf) == N and conf[0] == 1.0 and all(0 <= c <= 1 for c in conf)
    assert track["suggested"] == meta["suggested"] and track["suggested"]
    assert 0 not in track["suggested"]
    first = track["suggested"][0]
    assert conf[first] == min(conf[1:])
    assert f"least sure at frame {first}" in job.message
    files = sorted((session.work / "track").glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(N)]
    painted = np.zeros((H, W), bool)
    painted[BOX] = True
    # The keyframe keeps exactly what was painted; its neighbour is tracked from it.
    at_key = decode((session.work / "track" / "000000.png").read_bytes()) > 127
    np.testing.assert_array_equal(at_key, painted)
    next_frame = decode((session.work / "track" / "000001.png").read_bytes()) > 127
    assert (next_frame & painted).sum() / painted.sum() > 0.8
    status, data, _ = client.call("GET", "/api/track/1.png")
    assert status == 200
    np.testing.assert_array_equal(decode(data)[..., 3] > 0, next_frame)


def test_a_frame_marked_absent_stops_the_track(served) -> None:
    """The page's "Absent" button: an empty keyframe (the object is not in this frame), listed
    apart; tracking stops there (was: an erased keyframe was dropped, so the page could not say
    where the object leaves)."""
    session, client = served
    client.call("PUT", "/api/mask/0", painted_png(), {"Content-Type": "image/png"})
    status, body = client.json("POST", "/api/absent/30")
    assert status == 200 and body["keyframes"] == [0, 30] and body["absent"] == [30]
    info = client.json("GET", "/api/info")[1]
    assert info["keyframes"] == [0, 30] and info["absent"] == [30]
    assert client.json("POST", "/api/track")[0] == 202
    job = session.wait_job(300)
    assert job.state == "done", job.message
    area = [
        int((decode((session.work / "track" / f"{i:06d}.png").read_bytes()) > 127).sum())
        for i in range(N)
    ]
    assert all(a > 0 for a in area[:30]) and not any(area[30:]), area
    # Painting on the frame makes it an ordinary keyframe again; DELETE forgets it.
    body = client.json("PUT", "/api/absent/30")[1]
    assert body["absent"] == [30]
    status, data, _ = client.call(
        "PUT", "/api/mask/30", painted_png(), {"Content-Type": "image/png"}
    )
    assert status == 200 and json.loads(data)["absent"] == []
    client.json("POST", "/api/absent/30")
    body = client.json("DELETE", "/api/absent/30")[1]
    assert body["keyframes"] == [0] and body["absent"] == []
    assert client.json("POST", "/api/absent/45")[0] == 404  # no such frame


def test_only_absent_frames_are_no_paint(served) -> None:
    _, client = served
    client.json("POST", "/api/absent/5")
    for job in ("track", "remove"):
        status, body = client.json("POST", f"/api/{job}")
        assert status == 400 and "no mask painted yet" in body["error"], body


def test_remove_one_at_a_time_and_result(removed) -> None:
    session, client, job = removed["session"], removed["client"], removed["job"]
    statuses = sorted(s for s, _ in removed["answers"])
    assert statuses == [202, 409]
    refused = next(b for s, b in removed["answers"] if s == 409)
    assert "already running" in refused["error"] and "one job" in refused["error"]
    assert job.state == "done", job.message
    assert job.kind == "remove" and "45 frames" in job.message

    result = session.work / "result" / "result.mp4"
    out = first_frames(result, N)
    src = first_frames(session.input, N)
    assert len(out) == N
    grow = FAST.masks.dilate_px + FAST.masks.feather_px + 3
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    for i in (0, 22, 44):
        used = decode((session.work / "result" / "masks" / f"{i:06d}.png").read_bytes())
        assert used.any()
        outside = cv2.dilate(used, disc) == 0
        diff = np.abs(out[i].astype(int) - src[i]).max(axis=2)
        assert diff[outside].mean() < 3.0, (i, diff[outside].mean())  # re-encoding only
    inside = np.zeros((H, W), bool)
    inside[BOX] = True
    diff0 = np.abs(out[0].astype(int) - src[0]).max(axis=2)
    assert diff0[inside].mean() > 10.0  # the painted part of the digit is gone
    # The preview frames the page plays beside the original.
    status, data, ctype = client.call("GET", "/api/result/22.jpg")
    assert (status, ctype) == (200, "image/jpeg")
    assert decode(data).shape[:2] == (H, W)
    status, data, _ = client.call("GET", "/api/result-mask/0.png")
    assert status == 200
    np.testing.assert_array_equal(decode(data)[..., 3] > 0, inside)
    info = client.json("GET", "/api/info")[1]
    assert info["result"]["available"] and info["result"]["fresh"]
    assert info["result"]["frames"] == N


def test_review_frames_tint_only_the_filled_pixels(removed) -> None:
    """The page's "where pixels came from" toggle: the result tinted by the engine's bookkeeping."""
    session, client = removed["session"], removed["client"]
    used = decode((session.work / "result" / "masks" / "000000.png").read_bytes()) > 0
    status, data, ctype = client.call("GET", "/api/review/0.jpg")
    assert (status, ctype) == (200, "image/jpeg")
    review = decode(data, cv2.IMREAD_COLOR).astype(int)
    result = decode(client.call("GET", "/api/result/0.jpg")[1], cv2.IMREAD_COLOR).astype(int)
    diff = np.abs(review - result).max(axis=2)
    far = cv2.dilate(used.astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
    assert diff[used].mean() > 20  # tinted
    assert diff[far].mean() < 2  # JPEG noise only
    assert client.call("GET", f"/api/review/{N}.jpg")[0] == 404
    assert not list((session.work / "result").glob("review.*"))  # only its proxy frames are kept


def test_save_refuses_overwrite_and_outside_paths(removed, tmp_path: Path) -> None:
    session, client = removed["session"], removed["client"]
    folder = session.input.parent
    out, masks = folder / "clip_clean.mp4", folder / "clip_masks"
    body = {"output": "clip_clean.mp4", "masks": str(masks)}
    status, answer = client.json("POST", "/api/save", body)
    assert status == 200, answer
    assert answer["written"] == [str(out), str(masks)]
    assert out.read_bytes() == (session.work / "result" / "result.mp4").read_bytes()
    assert len(list(masks.glob("*.png"))) == N
    assert [p.name for p in (masks / "keyframes").iterdir()] == ["000000.png"]

    # Existing paths: 409 listing them, nothing touched; with overwrite: replaced.
    out.write_bytes(b"user's file")
    status, answer = client.json("POST", "/api/save", body)
    assert status == 409 and set(answer["exists"]) == {str(out), str(masks)}
    assert out.read_bytes() == b"user's file"
    status, answer = client.json("POST", "/api/save", {**body, "overwrite": True})
    assert status == 200 and out.read_bytes() != b"user's file"

    # Outside the input's folder and the work folder: 403, also through a symlink.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    status, answer = client.json("POST", "/api/save", {"output": str(outside / "x.mp4")})
    assert status == 403 and "outside the allowed folders" in answer["error"]
    link = folder / "link"
    link.symlink_to(outside, target_is_directory=True)
    try:
        status, _ = client.json("POST", "/api/save", {"output": "link/x.mp4"})
        assert status == 403
        status, _ = client.json("POST", "/api/save", {"masks": "../" * 8 + "tmp/m"})
        assert status == 403
    finally:
        link.unlink()
    assert not (outside / "x.mp4").exists()
    # The input itself and the work folder's internals are refused.
    assert client.json("POST", "/api/save", {"output": "clip.mp4"})[0] == 403
    work_track = str(session.work / "track" / "x.mp4")
    assert client.json("POST", "/api/save", {"output": work_track})[0] == 403
    # Wrong container, nothing to save.
    assert client.json("POST", "/api/save", {"output": "clip.mkv"})[0] == 400
    assert client.json("POST", "/api/save", {})[0] == 400

    # Painting after the removal marks tracking and result out of date (last: changes the state).
    client.call("PUT", "/api/mask/40", painted_png(), {"Content-Type": "image/png"})
    info = client.json("GET", "/api/info")[1]
    assert info["track"]["fresh"] is False and info["result"]["fresh"] is False


def test_save_before_remove_is_refused(served) -> None:
    _, client = served
    status, answer = client.json("POST", "/api/save", {"output": "x.mp4"})
    assert status == 400 and "Remove" in answer["error"]


# -------------------------------------------------------------------------------------- CLI


def test_ui_command_rejects_a_non_video(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    result = CliRunner().invoke(app, ["ui", str(bad), "--no-browser"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "notes.mp4" in lines[0]
    assert not (tmp_path / "notes.lama-ui").exists()  # refused before any work folder
    result = CliRunner().invoke(app, ["ui", str(tmp_path / "missing.mp4"), "--no-browser"])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_ui_command_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(CLIP, clip)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lama_video", "ui", str(clip), "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # As from a terminal: a test run started in the background (`cmd &`) ignores SIGINT, and
        # its children would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() else "")
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/info", timeout=30) as r:
            assert json.loads(r.read())["n_frames"] == N
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130  # DESIGN.md: Ctrl-C exits 130, masks kept
        assert proc.stderr is not None and "masks are kept" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "clip.lama-ui" / "keyframes").is_dir()


# ---------------------------------------------------------------------------------- overlays


def _burnt_clip(folder: Path) -> Path:
    """The sample clip (real handheld footage) with a 60 % ring logo burnt in, as PNG frames."""
    burnt_sample(folder / "burnt")
    return folder / "burnt"


def test_detect_overlays_then_remove_with_the_overlay_alone(tmp_path: Path) -> None:
    session = Session(_burnt_clip(tmp_path), config=FAST, work_dir=tmp_path / "work")
    session.start()
    server = UiServer(session, 0)
    server.start_in_thread()
    client = Client(server)
    try:
        assert client.json("GET", "/api/info")[1]["overlay"] is False
        assert client.call("GET", "/api/overlay.png")[0] == 404
        status, answer = client.json("POST", "/api/detect")
        assert status == 202 and answer["kind"] == "detect"
        job = session.wait_job(300)
        assert job.state == "done", job.message
        assert job.message.startswith("found 1 overlay(s)")
        info = client.json("GET", "/api/info")[1]
        assert info["overlay"] is True
        status, png, ctype = client.call("GET", "/api/overlay.png")
        assert status == 200 and ctype == "image/png"
        rgba = decode(png)
        assert rgba.shape == (info["proxy_height"], info["proxy_width"], 4)
        on = rgba[..., 3] > 0
        ys, xs = np.nonzero(on)
        # Found where the logo is: the top right of the frame.
        assert xs.mean() > 0.65 * rgba.shape[1] and ys.mean() < 0.35 * rgba.shape[0]
        # Remove needs no painted keyframe when there is an overlay mask.
        assert client.json("POST", "/api/remove")[0] == 202
        job = session.wait_job(600)
        assert job.state == "done", job.message
        assert client.json("GET", "/api/info")[1]["result"]["available"] is True
        # The page's edit: an empty mask deletes the overlay.
        w, h = info["proxy_width"], info["proxy_height"]
        empty = cv2.imencode(".png", np.zeros((h, w, 4), np.uint8))[1].tobytes()
        status, body = client.json("PUT", "/api/overlay", empty)
        assert status == 200 and body["kept"] is False and body["overlay"] is False
        assert not session.overlay_path.exists()
        status, body = client.json("PUT", "/api/overlay", painted_png(w, h))
        assert status == 200 and body["kept"] is True
        assert read_mask(session.overlay_path).shape == (info["height"], info["width"])
    finally:
        server.stop()


def read_mask(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return img


def test_detect_finds_nothing_on_a_clean_clip(served) -> None:
    session, client = served
    assert client.json("POST", "/api/detect")[0] == 202
    job = session.wait_job(300)
    assert job.state == "error"
    assert "no static overlay found" in job.message
    assert not session.overlay_path.exists()
    # Without an overlay mask or paint, Remove is refused as before.
    status, body = client.json("POST", "/api/remove")
    assert status == 400 and "no mask painted" in body["error"]


def test_clean_plate_upload_checks_and_removal(tmp_path: Path) -> None:
    """A clean plate for one frame: download the frame at full size, upload it painted clean
    (wrong ones refused), and the removal takes what no frame shows from it."""
    rng = np.random.default_rng(4)
    h, w, n = 120, 160, 10
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), (0, 0), 1.5)
    bars = 60.0 * (np.sin(np.arange(w) / 3.0) > 0)
    scene = np.clip(scene * 0.5 + bars[None, :, None], 0, 255).astype(np.uint8)
    frames = tmp_path / "frames"
    frames.mkdir()
    shown = scene.copy()
    shown[40:80, 60:100] = (255, 0, 0)  # a still object that never moves off the bars
    for t in range(n):
        cv2.imwrite(str(frames / f"{t:05d}.png"), cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
    cfg = RunConfig().replace({"inpaint": {"engine": "exemplar"}})
    session = Session(frames, config=cfg, work_dir=tmp_path / "work")
    session.start()
    server = UiServer(session, 0)
    server.start_in_thread()
    client = Client(server)
    png = {"Content-Type": "image/png"}

    def encode(rgb: np.ndarray) -> bytes:
        return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()

    try:
        mask = np.zeros((h, w, 4), np.uint8)
        mask[40:80, 60:100] = (96, 48, 255, 255)
        status, _, _ = client.call(
            "PUT", "/api/mask/0", cv2.imencode(".png", mask)[1].tobytes(), png
        )
        assert status == 200
        status, data, ctype = client.call("GET", "/api/full/5.png")
        assert status == 200 and ctype == "image/png"
        assert np.array_equal(
            cv2.cvtColor(decode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), shown
        )
        for bad, why in (
            (encode(scene[:60, :80]), "is 80x60 but the video is 160x120"),
            (encode(255 - scene), "differs from that frame"),
            (b"not an image", "not a readable 160x120 PNG or JPEG"),
        ):
            status, body = client.json("PUT", "/api/plate/5", bad)
            assert status == 400 and why in body["error"], body
        assert client.json("GET", "/api/info")[1]["plates"] == []
        status, body = client.json("PUT", "/api/plate/5", encode(scene))
        assert status == 200 and body["plates"] == [5]
        assert client.json("GET", "/api/info")[1]["plates"] == [5]
        assert client.json("POST", "/api/remove")[0] == 202
        job = session.wait_job(300)
        assert job.state == "done", job.message
        result = first_frames(session.work / "result" / session.result_name, n)
        for rgb in result:  # the bars behind the object, in every frame
            err = np.abs(rgb[40:80, 60:100].astype(int) - scene[40:80, 60:100]).mean()
            assert err < 3.0, err  # the encoder's loss (CRF 18), not an invention
        # After a removal the frame to paint on is the result's.
        data = client.call("GET", "/api/full/5.png")[1]
        assert np.array_equal(
            cv2.cvtColor(decode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), result[5]
        )
        status, body = client.json("DELETE", "/api/plate/5")
        assert status == 200 and body["plates"] == []
        assert client.call("GET", "/api/full/99.png")[0] == 404
    finally:
        server.stop()


def test_clean_plates_are_refused_without_the_temporal_engine(served) -> None:
    session, client = served  # FAST: the per-frame engine
    frame = first_frames(session.input, 1)[0]
    png = cv2.imencode(".png", frame[..., ::-1])[1].tobytes()
    status, body = client.json("PUT", "/api/plate/0", png)
    assert status == 409 and "need the temporal engine" in body["error"]
    assert session.plates() == []
