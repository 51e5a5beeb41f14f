"""The mask-painting page in a real headless browser (Debian's Chromium driven by Playwright).

A user's whole path through the page on a real clip: paint a stroke with the mouse, undo, box-select
and clear on another frame, Track, Remove, look at the side-by-side result, Save (and be asked
before overwriting). Needs ``/usr/bin/chromium`` (or ``LAMA_VIDEO_CHROMIUM``) and the ``playwright``
package; when either is missing the test fails with the command that installs it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from overlay_helpers import burnt_sample

from lama_video.config import RunConfig
from lama_video.ui import Session, UiServer
from lama_video.video import open_video

CLIP = Path(__file__).parent / "fixtures" / "media" / "aac.mp4"  # 320x240, 45 frames
W, H, N = 320, 240, 45
FAST = RunConfig().replace({"inpaint": {"engine": "telea"}, "temporal": {"enabled": False}})
CHROMIUM = os.environ.get("LAMA_VIDEO_CHROMIUM", "/usr/bin/chromium")
# The flags this machine needs: no sandbox as root, and no background connections (the network is
# closed, so Chromium would otherwise keep failing to reach Google's hosts).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STROKE = [(130, 95), (160, 115), (190, 140)]  # preview pixels, over the digit
BRUSH = 40


def _browser(playwright):  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install it with "
            "`apt-get install -y --no-install-recommends chromium` (Debian) or set "
            "LAMA_VIDEO_CHROMIUM to a Chromium/Chrome binary"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.fixture
def served(tmp_path: Path):
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(CLIP, clip)
    session = Session(clip, config=FAST)
    session.start()
    server = UiServer(session, 0)
    server.start_in_thread()
    yield session, server
    server.stop()


def _grey(path: Path) -> np.ndarray:
    img = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img is not None, path
    return img


def _client(view, x: float, y: float, w: int, h: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Page coordinates of pixel (x, y) of a ``w`` x ``h`` canvas shown scaled in ``view``."""
    box = view.bounding_box()
    assert box is not None
    return box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h


def _open(browser, url: str, errors: list[str]):  # type: ignore[no-untyped-def]
    """A new page on ``url``, once the app is ready; page errors are appended to ``errors``."""
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page


@contextlib.contextmanager
def _page_on(session: Session) -> Iterator[Any]:
    """A browser page on a server for ``session`` (started here), once the app is ready; the
    page raised no error by the end (checked on exit, after everything is stopped)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install playwright (dev extra)")
    session.start()
    server = UiServer(session, 0)
    server.start_in_thread()
    errors: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = _browser(pw)
            try:
                yield _open(browser, server.url, errors)
            finally:
                browser.close()
    finally:
        server.stop()
    assert not errors, errors


def _shot(locator) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Element screenshot as (h, w, 3) RGB."""
    img = cv2.imdecode(np.frombuffer(locator.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    return img[..., ::-1].astype(int)


def test_paint_track_remove_save_in_the_browser(served) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install playwright (dev extra)")
    session, server = served
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = _open(browser, server.url, errors)

            view = page.locator("#view")

            def to_client(x: float, y: float) -> tuple[float, float]:
                return _client(view, x, y, W, H)

            def drag(points: list[tuple[float, float]]) -> None:
                page.mouse.move(*to_client(*points[0]))
                page.mouse.down()
                for (x0, y0), (x1, y1) in itertools.pairwise(points):
                    for t in np.linspace(0, 1, 6)[1:]:
                        page.mouse.move(*to_client(x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
                page.mouse.up()

            def wait_rev(before: int) -> None:
                page.wait_for_function(f"window.lamaApp.rev > {before}", timeout=10_000)

            # --- paint a stroke on frame 0 (saved on mouse-up) -----------------------------
            page.locator("#brush-size").fill(str(BRUSH))
            rev = page.evaluate("window.lamaApp.rev")
            drag(STROKE)
            wait_rev(rev)
            key0 = session.work / "keyframes" / "000000.png"
            painted = _grey(key0) > 127
            assert painted.shape == (H, W)
            for x, y in STROKE:
                assert painted[y, x], (x, y)
            assert not painted[:40].any() and not painted[:, :60].any()  # only near the stroke
            area = int(painted.sum())
            assert 0.5 * BRUSH * 100 < area < 2.0 * BRUSH * 140  # about brush x stroke length

            # --- a second stroke, then Undo: back to the first ------------------------------
            rev = page.evaluate("window.lamaApp.rev")
            drag([(40, 200), (80, 200)])
            wait_rev(rev)
            assert (_grey(key0) > 127)[200, 60]
            rev = page.evaluate("window.lamaApp.rev")
            page.click("#btn-undo")
            wait_rev(rev)
            np.testing.assert_array_equal(_grey(key0) > 127, painted)

            # --- box-select on frame 40, then Clear removes that keyframe -------------------
            page.locator("#scrub").fill("40")
            page.wait_for_function("window.lamaApp.cur === 40")
            page.click("#tool-box")
            rev = page.evaluate("window.lamaApp.rev")
            drag([(20, 20), (60, 50)])
            wait_rev(rev)
            boxed = _grey(session.work / "keyframes" / "000040.png") > 127
            ys, xs = np.nonzero(boxed)
            assert abs(ys.min() - 20) <= 1 and abs(ys.max() - 50) <= 1
            assert abs(xs.min() - 20) <= 1 and abs(xs.max() - 60) <= 1
            assert boxed[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].mean() > 0.97
            assert session.keyframes() == [0, 40]
            rev = page.evaluate("window.lamaApp.rev")
            page.click("#btn-clear")
            wait_rev(rev)
            assert session.keyframes() == [0]
            page.click("#tool-brush")

            # --- Absent on frame 40: an empty keyframe, where the track stops ----------------
            rev = page.evaluate("window.lamaApp.rev")
            page.click("#btn-absent")
            wait_rev(rev)
            assert session.keyframes() == [0, 40] and session.absent_keyframes() == [40]
            assert "40 ∅" in page.inner_text("#keyframes")
            assert "absent" in page.inner_text("#frame-no")

            # --- Track: one mask per frame, drawn over the frame while scrubbing --------------
            page.click("#btn-track")
            page.wait_for_function("document.body.dataset.job === 'track:done'", timeout=60_000)
            assert len(list((session.work / "track").glob("*.png"))) == N
            tracked = [_grey(session.work / "track" / f"{i:06d}.png") > 127 for i in range(N)]
            assert all(m.any() for m in tracked[:40]) and not any(m.any() for m in tracked[40:])
            assert "up to date" in page.inner_text("#track-state")
            # The frames the tracker is least sure of are marked on the timeline; a click on the
            # first goes there.
            meta = json.loads((session.work / "track" / "meta.json").read_text())
            weak = page.locator("#marks b.weak")
            assert weak.count() == len(meta["suggested"]) > 0
            assert f"least sure at frame {meta['suggested'][0]}" in page.inner_text("#msg")
            weak.first.click()
            page.wait_for_function(f"window.lamaApp.cur === {meta['suggested'][0]}")
            page.locator("#scrub").fill("2")
            page.wait_for_function("window.lamaApp.cur === 2")
            page.wait_for_timeout(300)
            x, y = STROKE[1]
            r, g, b = page.evaluate(
                f"Array.from(document.getElementById('view').getContext('2d')"
                f".getImageData({x}, {y}, 1, 1).data.slice(0, 3))"
            )
            assert b > r + 40, (r, g, b)  # the tracked mask's cyan tint over a grey frame

            # --- Remove: progress, then the result beside the original -----------------------
            page.click("#btn-remove")
            page.wait_for_function("document.body.dataset.job === 'remove:done'", timeout=60_000)
            page.wait_for_selector("#result-view:not([hidden])")
            page.click("#btn-play")  # pause the automatic playback
            page.evaluate("window.lamaApp.playing = false")
            page.locator("#show-removed").uncheck()
            page.locator("#scrub").fill("0")
            page.wait_for_function("window.lamaApp.cur === 0")
            page.wait_for_timeout(500)
            orig, res = _shot(page.locator("#orig")), _shot(page.locator("#res"))
            assert orig.shape == res.shape
            sy, sx = orig.shape[0] / H, orig.shape[1] / W
            inside = cv2.resize(painted.astype(np.uint8), (orig.shape[1], orig.shape[0])) > 0
            inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            far = np.ones(inside.shape, bool)
            far[int(60 * sy) : int(190 * sy), int(90 * sx) : int(240 * sx)] = False
            diff = np.abs(orig - res).max(axis=2)
            assert diff[inside].mean() > 25, diff[inside].mean()  # the digit's stroke is gone
            assert diff[far].mean() < 6, diff[far].mean()  # the rest is the same picture
            # The "where pixels came from" toggle tints the filled pixels, nothing else.
            page.locator("#show-origin").check()
            page.wait_for_timeout(500)
            tinted = _shot(page.locator("#res"))
            change = np.abs(tinted - res).max(axis=2)
            assert change[inside].mean() > 20, change[inside].mean()
            assert change[far].mean() < 3, change[far].mean()
            page.locator("#show-origin").uncheck()
            result = session.work / "result" / "result.mp4"
            with open_video(result) as reader:
                assert sum(1 for _ in reader.frames()) == N

            # --- Save, then Save again: asked before overwriting -----------------------------
            folder = session.input.parent
            page.fill("#out-path", "clip_clean.mp4")
            page.fill("#mask-path", str(folder / "clip_masks"))
            page.click("#btn-save")
            page.wait_for_function("document.getElementById('msg').textContent.startsWith('saved')")
            out = folder / "clip_clean.mp4"
            assert out.read_bytes() == result.read_bytes()
            assert len(list((folder / "clip_masks").glob("*.png"))) == N
            out.write_bytes(b"keep me")
            page.once("dialog", lambda d: d.dismiss())
            page.click("#btn-save")
            page.wait_for_function(
                "document.getElementById('msg').textContent.startsWith('not saved')"
            )
            assert out.read_bytes() == b"keep me"
            page.once("dialog", lambda d: d.accept())
            page.click("#btn-save")
            page.wait_for_function("document.getElementById('msg').textContent.startsWith('saved')")
            assert out.read_bytes() == result.read_bytes()

            # --- a second tab finds the same work ----------------------------------------------
            other = browser.new_page()
            other.goto(server.url)
            other.wait_for_selector("body[data-ready='1']", timeout=30_000)
            assert other.evaluate("[...window.lamaApp.keyframes]") == [0, 40]
            assert other.evaluate("[...window.lamaApp.absent]") == [40]
            assert not other.locator("#view-result").is_disabled()
        finally:
            browser.close()
    assert not errors, errors
    state = json.loads(json.dumps(session.state()))
    assert state["result"]["fresh"] and state["keyframes"] == [0, 40] and state["absent"] == [40]


def test_detect_overlays_edit_and_remove_in_the_browser(tmp_path: Path) -> None:
    """Detect overlays on a clip with a burnt-in logo: the found mask is drawn in yellow on the
    frame, the "overlay" toggle edits it with the brush tools, and Remove works without any
    painted keyframe."""
    folder = tmp_path / "burnt"
    frames, opacity = burnt_sample(folder)
    h, w = frames[0].shape[:2]  # 568x320: the page shows it at full size
    session = Session(folder, config=FAST, work_dir=tmp_path / "work")
    with _page_on(session) as page:
        page.click("#btn-detect")
        page.wait_for_function("document.body.dataset.job === 'detect:done'", timeout=120_000)
        assert "found 1 overlay" in page.inner_text("#msg")
        found = _grey(session.overlay_path) > 127
        ys, xs = np.nonzero(found & (opacity > 0.5))
        assert ys.size > 100
        page.wait_for_function("window.lamaApp.overlayImg !== null")
        page.wait_for_timeout(300)

        def pixel(x: int, y: int) -> list[int]:
            return page.evaluate(
                f"Array.from(document.getElementById('view').getContext('2d')"
                f".getImageData({x}, {y}, 1, 1).data.slice(0, 3))"
            )

        # The found mask is drawn in yellow over the (whitish) logo.
        rr, gg, bb = pixel(int(xs[0]), int(ys[0]))
        assert rr > bb + 40 and gg > bb + 20, (rr, gg, bb)
        # Edit it: a box added with the overlay toggle on is saved into the overlay mask.
        page.locator("#edit-overlay").check()
        page.click("#tool-box")
        view = page.locator("#view")
        rev = page.evaluate("window.lamaApp.rev")
        page.mouse.move(*_client(view, 20, 250, w, h))
        page.mouse.down()
        page.mouse.move(*_client(view, 60, 290, w, h))
        page.mouse.up()
        page.wait_for_function(f"window.lamaApp.rev > {rev}", timeout=10_000)
        edited = _grey(session.overlay_path) > 127
        assert edited[255:285, 25:55].all()  # the new box
        assert (edited & found).sum() == found.sum()  # the found logo is still there
        assert session.keyframes() == []  # no keyframe was painted
        page.locator("#edit-overlay").uncheck()
        # Remove with the overlay mask alone.
        page.click("#btn-remove")
        page.wait_for_function("document.body.dataset.job === 'remove:done'", timeout=300_000)
        page.wait_for_selector("#result-view:not([hidden])")
        assert (session.work / "result" / "result.mp4").is_file()


def test_clean_plate_download_upload_and_remove_in_the_browser(tmp_path: Path) -> None:
    """Download a frame at full size, upload it painted clean as a clean plate (the page lists
    it and can forget it), and Remove takes the hidden background from it."""
    rng = np.random.default_rng(4)
    h, w, n = 120, 160, 8
    scene = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3)).astype(np.uint8), (0, 0), 1.5)
    bars = 60.0 * (np.sin(np.arange(w) / 3.0) > 0)
    scene = np.clip(scene * 0.5 + bars[None, :, None], 0, 255).astype(np.uint8)
    shown = scene.copy()
    shown[40:80, 60:100] = (255, 0, 0)  # a still object: no frame shows the bars behind it
    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(n):
        cv2.imwrite(str(frames / f"{t:05d}.png"), shown[..., ::-1])
    cfg = RunConfig().replace({"inpaint": {"engine": "exemplar"}})
    session = Session(frames, config=cfg, work_dir=tmp_path / "work")
    mask = np.zeros((h, w, 4), np.uint8)
    mask[40:80, 60:100] = (96, 48, 255, 255)
    assert session.save_keyframe(0, cv2.imencode(".png", mask)[1].tobytes())
    with _page_on(session) as page:
        page.locator("#scrub").fill("3")
        page.locator("#scrub").dispatch_event("input")
        page.wait_for_function("window.lamaApp.cur === 3")
        with page.expect_download() as got:
            page.click("#btn-full")
        frame3 = tmp_path / "frame3.png"
        got.value.save_as(frame3)
        assert got.value.suggested_filename == "frame00003.png"
        assert np.array_equal(cv2.imread(str(frame3))[..., ::-1], shown)
        # "Paint" it clean and upload it.
        plate = tmp_path / "plate3.png"
        cv2.imwrite(str(plate), scene[..., ::-1])
        page.set_input_files("#plate-file", str(plate))
        page.wait_for_selector("#plates button[data-frame='3']")
        page.wait_for_selector("#marks i.plate[data-frame='3']")  # marked on the timeline
        assert session.plates() == [3]
        assert "clean plate stored for frame 3" in page.inner_text("#msg")
        # A wrong one is refused with the reason.
        wrong = tmp_path / "wrong.png"
        cv2.imwrite(str(wrong), scene[:60, :80])
        page.set_input_files("#plate-file", str(wrong))
        page.wait_for_function("document.getElementById('msg').textContent.includes('is 80x60')")
        assert session.plates() == [3]
        page.click("#btn-remove")
        page.wait_for_function("document.body.dataset.job === 'remove:done'", timeout=300_000)
        with open_video(session.work / "result" / session.result_name) as r:
            for f in r.frames():
                err = np.abs(f.rgb[40:80, 60:100].astype(int) - scene[40:80, 60:100])
                assert err.mean() < 3.0  # the bars, from the plate (encoder loss only)
        page.click("#plates button.del-plate[data-frame='3']")
        page.wait_for_selector("#plates em")
        assert page.locator("#marks i.plate").count() == 0
        assert session.plates() == []
