"""propagate.py and ``lama-video mask``: tracking a textured square, errors, PNG/preview output."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lama_video import propagate as propagate_module
from lama_video.cli import app
from lama_video.config import PropagationConfig, RunConfig
from lama_video.errors import MaskError
from lama_video.masks import dilate, read_mask_image
from lama_video.outputs import MARKER
from lama_video.propagate import (
    MaskTracker,
    PackedMasks,
    _box_mean,
    _Plate,
    _pooled,
    carry_on,
    check_keyframes,
    colour_models,
    combine,
    holes,
    moving_with_background,
    object_flow,
    propagate_keyframes,
    propagate_masks,
    suggest_keyframes,
    tracking_steps,
)
from lama_video.video import open_video, write_png

N, H, W = 10, 96, 128
SIDE = 30
SHIFT = (3, 2)  # square's motion per frame (dx, dy)
PAN = (-1, 0)  # background's motion per frame


def _texture(h: int, w: int, cells: int, seed: int, tint: tuple[float, float, float]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 1, (max(2, h // cells), max(2, w // cells), 3)).astype(np.float32)
    smooth = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img = 40 + 160 * np.clip(smooth, 0, 1) * np.array(tint, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _clip(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """(n, H, W, 3) uint8 frames and (n, H, W) bool true masks of a square moving over a pan."""
    bg = _texture(H, W + 2 * n, 6, seed=1, tint=(0.6, 0.9, 0.7))
    fg = _texture(SIDE, SIDE, 5, seed=2, tint=(1.0, 0.45, 0.35))
    frames = np.empty((n, H, W, 3), np.uint8)
    truth = np.zeros((n, H, W), bool)
    for t in range(n):
        x_bg = n - PAN[0] * t
        frame = bg[:, x_bg - n : x_bg - n + W].copy() if PAN[0] <= 0 else bg[:, :W].copy()
        x, y = 20 + SHIFT[0] * t, 20 + SHIFT[1] * t
        frame[y : y + SIDE, x : x + SIDE] = fg
        frames[t] = frame
        truth[t, y : y + SIDE, x : x + SIDE] = True
    return frames, truth


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _coverage(pred: np.ndarray, true: np.ndarray) -> float:
    return float((pred & true).sum() / true.sum())


TIGHT = PropagationConfig(safety_px=0)


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    return _clip()


@pytest.mark.parametrize(
    "keys", [[0], [N - 1], [0, N - 1]], ids=["forward", "backward", "two-sided"]
)
def test_tracks_moving_square(clip, keys):
    frames, truth = clip
    kf = {k: truth[k] for k in keys}
    tight = list(propagate_keyframes(frames, kf, TIGHT))
    assert len(tight) == N
    for t in range(N):
        assert _iou(tight[t], truth[t]) > 0.9, f"frame {t}: IoU {_iou(tight[t], truth[t]):.3f}"
    safe = propagate_masks(frames, kf, RunConfig())
    for t in range(N):
        assert _coverage(safe[t], truth[t]) > 0.98, f"frame {t}"
        # The safety margin grows the hole, within reason (area <= 2x the 30x30 square).
        assert safe[t].sum() <= 2.0 * truth[t].sum()
    for k in keys:  # keyframes keep their own mask exactly
        assert np.array_equal(safe[k], truth[k])


def test_reader_like_source_and_progress(clip):
    frames, truth = clip

    class Reader:
        passes = 0

        def frames(self):
            Reader.passes += 1
            yield from frames

    ticks: list[int] = []
    out = list(propagate_keyframes(Reader(), {4: truth[4]}, TIGHT, progress=ticks.append))
    assert len(out) == N and Reader.passes == 1
    assert sum(ticks) == N + 4  # forward pass over all frames, backward over frames 3..0
    # Several keyframes: the backward pass skips them (what the progress bars' totals count).
    for keys in ((4,), (0, 5), (2, 3, 9), (1, 4, 6)):
        ticks = []
        propagate_masks(frames, {k: truth[k] for k in keys}, TIGHT, progress=ticks.append)
        assert sum(ticks) == tracking_steps(N, keys) == N + max(keys) + 1 - len(keys), keys


def test_holes_are_propagation_plus_dilation(clip):
    frames, truth = clip
    cfg = RunConfig()
    raw = propagate_masks(frames, {0: truth[0]}, cfg)
    for t, hole in enumerate(holes(frames, {0: truth[0]}, cfg)):
        assert np.array_equal(hole, dilate(raw[t], cfg.masks.dilate_px))


def test_combine_keeps_what_either_direction_has():
    a = np.zeros((H, W), bool)
    b = np.zeros((H, W), bool)
    a[10:30, 5:25] = True
    b[2:38, 12:18] = True
    both = combine(a, b)
    assert both[a].all() and both[b].all() and not both[~(a | b)].any()


def test_object_flow_carries_a_zoom_to_the_outline():
    """A growing object's outline moves outward faster than its interior: the similarity fit
    extrapolates that, where averaging the interior's flow would fall short."""
    h, w = 120, 120
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy, zoom = 60.0, 60.0, 0.08
    flow = np.stack([zoom * (xs - cx) + 1.0, zoom * (ys - cy) - 0.5], axis=-1).astype(np.float32)
    disk = (xs - cx) ** 2 + (ys - cy) ** 2 <= 40**2
    # Flow is trusted only well inside the object (the outline's flow mixes in the background).
    interior = (xs - cx) ** 2 + (ys - cy) ** 2 <= 25**2
    fb_err = np.where(interior, 0.0, 50.0).astype(np.float32)
    out = object_flow(disk, flow, fb_err)
    rim = disk & ~interior
    err = np.linalg.norm(out[rim] - flow[rim], axis=-1)
    assert err.max() < 0.05, err.max()  # true motion at the rim is up to 3.2 px


def test_moving_with_background_flags_only_background_motion():
    h, w = 100, 140
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = -2.0  # camera pan: background moves 2 px left
    obj = np.zeros((h, w), bool)
    obj[30:70, 40:80] = True
    flow[obj] = (3.0, 1.0)  # the object moves its own way
    strip = np.zeros((h, w), bool)
    strip[70:80, 20:80] = True  # background caught in the mask, moving with the background
    mask = obj | strip
    outside = ~cv2.dilate(mask.view(np.uint8), np.ones((9, 9), np.uint8)).view(bool)
    err = np.zeros((h, w), np.float32)
    flagged = moving_with_background(mask, outside, flow, err)
    assert flagged[strip].mean() > 0.95
    assert not flagged[obj].any()
    # An object moving like its background cannot be told apart by motion: nothing is flagged.
    flow[obj] = (-2.0, 0.0)
    assert not moving_with_background(mask, outside, flow, err).any()
    # Unreliable flow (forward-backward error) is never evidence.
    flow[obj] = (3.0, 1.0)
    assert not moving_with_background(mask, outside, flow, err + 100.0).any()


def test_plate_knows_a_steady_background_carried_by_the_camera():
    h, w = 60, 80
    scene = _texture(h, w + 10, 5, seed=4, tint=(0.7, 0.8, 0.9))
    first, second = scene[:, 5 : 5 + w], scene[:, 2 : 2 + w]  # the camera pans 3 px left
    box = (0, h, 0, w)
    everywhere = np.ones((h, w), bool)
    once = _Plate.empty(box).seen(_box_mean(first, box), everywhere)
    twice = once.seen(_box_mean(first, box), everywhere)
    pan = np.array([[1, 0, 3], [0, 1, 0], [0, 0, 1]], np.float64)  # first -> second
    inner = np.zeros((h, w), bool)
    inner[5:-5, 8:-5] = True  # what both frames show, away from the borders
    # Seen twice and carried by the pan: the same background in the next frame is known ...
    assert twice.moved(pan, box).shows(_box_mean(second, box), everywhere)[inner].mean() > 0.99
    # ... also in a box of its own (the plate's pixels are the box's).
    sub = (10, 50, 20, 70)
    inner_sub = twice.moved(pan, sub).shows(_box_mean(second, sub), np.ones((40, 50), bool))
    assert inner_sub.mean() > 0.99
    # ... from one look too, but not where something else stands now, nor where it was not still.
    assert once.moved(pan, box).shows(_box_mean(second, box), everywhere)[inner].mean() > 0.99
    other = second.copy()
    other[20:40, 30:50] = 255 - other[20:40, 30:50]
    shown = twice.moved(pan, box).shows(_box_mean(other, box), everywhere)
    assert not shown[20:40, 30:50].any()
    # Looks 40 levels either side of this frame: their mean is this frame, but they were not still.
    brighter, darker = (np.clip(first.astype(int) + d, 0, 255).astype(np.uint8) for d in (40, -40))
    unsteady = _Plate.empty(box).seen(_box_mean(brighter, box), everywhere)
    unsteady = unsteady.seen(_box_mean(darker, box), everywhere)
    assert np.abs(unsteady.mean - _box_mean(first, box)).max() < 1
    assert not unsteady.shows(_box_mean(first, box), everywhere).any()
    # The box mean of a box is the whole frame's there.
    assert np.array_equal(_box_mean(first, sub), _box_mean(first, box)[10:50, 20:70])


def test_background_caught_in_the_track_is_left_out_of_the_written_masks(monkeypatch):
    """A keyframe mask that takes in a strip of the ground under the object, the ground of the
    object's colours all along (a row of parked scooters beside the rider): the tracked mask
    runs along it as the object moves; the written masks leave out the ground that was seen
    before the mask reached it, and keep the object."""
    n = 16
    bg = _texture(H, W + 2 * n, 6, seed=1, tint=(0.6, 0.9, 0.7))
    bg[62:74] = _texture(12, W + 2 * n, 5, seed=3, tint=(1.0, 0.45, 0.35))
    fg = _texture(SIDE, SIDE, 5, seed=2, tint=(1.0, 0.45, 0.35))
    frames = np.empty((n, H, W, 3), np.uint8)
    truth = np.zeros((n, H, W), bool)
    for t in range(n):
        frames[t] = bg[:, t : t + W]  # the camera pans 1 px a frame
        x = 10 + 3 * t
        frames[t, 32 : 32 + SIDE, x : x + SIDE] = fg
        truth[t, 32 : 32 + SIDE, x : x + SIDE] = True
    key = truth[0].copy()
    key[62:74, 10 : 10 + SIDE] = True  # the strip of ground marked with the object

    def ground_ahead(masks: PackedMasks) -> int:
        """Ground pixels in the last frames' masks beyond what the keyframe's strip covered."""
        total = 0
        for t in range(n - 6, n):
            ahead = np.zeros((H, W), bool)
            ahead[62:74, max(0, 46 - t) :] = True
            total += int((masks[t] & ahead).sum())
        return total

    tight = PropagationConfig(safety_px=0)
    out = propagate_masks(frames, {0: key}, tight)
    for t in range(n):
        assert _coverage(out[t], truth[t]) > 0.96, f"frame {t}"
    monkeypatch.setattr(_Plate, "shows", lambda self, colours, query: np.zeros_like(query))
    without = propagate_masks(frames, {0: key}, tight)
    assert ground_ahead(without) > 1000  # the track does run along the ground ...
    assert ground_ahead(out) < 0.4 * ground_ahead(without)  # ... the written masks mostly not


def test_growth_onto_background_the_plate_saw_is_refused(monkeypatch):
    """The colour re-fit takes in a patch of ground beside a still object (its colours the
    object's, as a marked shadow's ground is) while the camera pans: the patch the plate saw in
    the keyframe, still showing that ground and moving with it, is refused; a patch next to the
    object, never seen clear of the mask, is kept; where the flow does not follow the background
    (a part moving on its own), or with the plate unused, both are kept."""
    bg = _texture(H, W + 8, 6, seed=1, tint=(0.6, 0.9, 0.7))
    bg[30:60, 20:50] = _texture(SIDE, SIDE, 5, seed=2, tint=(1.0, 0.45, 0.35))
    first, second = bg[:, 4 : 4 + W], bg[:, 3 : 3 + W]  # the scene moves 1 px right (a pan)
    key = np.zeros((H, W), bool)
    key[30:60, 16:46] = True  # the object, still in the scene: 1 px right in the second frame
    seen = np.zeros((H, W), bool)
    seen[36:50, 56:66] = True  # 9 px clear of the object in the keyframe
    unseen = np.zeros((H, W), bool)
    unseen[40:50, 47:50] = True  # within the plate's reach of the keyframe's mask
    monkeypatch.setattr(propagate_module, "colour_refine", lambda rgb, m, **_: m | seen | unseen)
    monkeypatch.setattr(
        propagate_module, "colour_share", lambda obj, bg, q: np.ones(len(q), np.float32)
    )

    def state() -> np.ndarray:
        tracker = MaskTracker(PropagationConfig(), H, W)
        assert tracker.work_size == (W, H)
        tracker.reset(first, key)
        tracker.step(second)
        assert tracker._state is not None
        return tracker._state

    kept = state()
    assert kept[unseen].all() and kept[31:59, 18:46].all()
    assert kept[seen].mean() < 0.05
    with monkeypatch.context() as m:
        m.setattr(propagate_module, "_near_background", lambda hom, flow, ys, xs: ys < 0)
        assert state()[seen].all()
    monkeypatch.setattr(_Plate, "shows", lambda self, colours, query: np.zeros_like(query))
    assert state()[seen].all()


def test_colour_models_do_not_depend_on_opencv_rng_state():
    """GrabCut's k-means draws from OpenCV's global RNG: the models must not depend on what ran
    before (another clip, another batch job)."""
    rng = np.random.default_rng(3)
    obj = rng.integers(0, 256, (3000, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (3000, 3), dtype=np.uint8)
    cv2.setRNGSeed(12345)
    first = colour_models(obj, bg)
    cv2.setRNGSeed(777)
    cv2.randu(np.zeros((100, 100), np.float32), 0, 1)
    second = colour_models(obj, bg)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_packed_masks_round_trip():
    rng = np.random.default_rng(0)
    store = PackedMasks(7, 13)
    masks = [rng.uniform(size=(7, 13)) > 0.5 for _ in range(3)]
    for m in masks:
        store.append(m)
    store.resize(4)
    assert len(store) == 4 and not store.is_set(3) and not store[3].any()
    for m, got in zip(masks, store, strict=False):
        assert np.array_equal(m, got)


def test_errors(clip):
    frames, truth = clip
    with pytest.raises(MaskError, match=r"keyframe 10 is outside the clip \(frames 0\.\.9, 10 "):
        propagate_masks(frames, {10: truth[0]})
    with pytest.raises(MaskError, match="keyframe mask 0 is 64x48 but the video frames are 128x96"):
        propagate_masks(frames, {0: np.ones((48, 64), bool)})
    with pytest.raises(
        MaskError, match=r"every keyframe mask is empty \(no pixel marked on frame 3, 5\)"
    ):
        propagate_keyframes(frames, {3: np.zeros((H, W), np.uint8), 5: np.zeros((H, W), bool)})
    with pytest.raises(MaskError, match="no keyframe mask given"):
        propagate_keyframes(frames, {})
    with pytest.raises(MaskError, match="cannot read mask image"):
        propagate_keyframes(frames, {0: "/nonexistent/mask.png"})
    for err in (MaskError("x"),):
        assert "\n" not in str(err)
    with pytest.raises(MaskError):
        check_keyframes({-1: truth[0]})


# ------------------------------------------------------------------------------------------- CLI

runner = CliRunner()


def _write_clip(
    tmp_path: Path, frames: np.ndarray, truth: np.ndarray, name: str = "{:05d}.png"
) -> tuple[Path, Path]:
    """The frames as PNG files named ``name.format(t)`` and frame 0's true mask as key.png."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, f in enumerate(frames):
        write_png(folder / name.format(t), f)
    mask = tmp_path / "key.png"
    cv2.imwrite(str(mask), truth[0].astype(np.uint8) * 255)
    return folder, mask


def _track_cli(folder: Path, key: Path, out: Path, *extra: str, quiet: bool = False):  # type: ignore[no-untyped-def]
    """``lama-video [-q] mask FOLDER --keyframe-mask 0:KEY -o OUT EXTRA...``, run in-process."""
    args = ["mask", str(folder), "--keyframe-mask", f"0:{key}", "-o", str(out), *extra]
    return runner.invoke(app, ["-q", *args] if quiet else args)


def test_cli_writes_one_png_per_frame_and_preview(tmp_path, clip):
    frames, truth = clip
    folder, key = _write_clip(tmp_path, frames, truth)
    out, preview = tmp_path / "masks", tmp_path / "preview.mp4"
    res = _track_cli(folder, key, out, "--preview", str(preview), quiet=True)
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("*.png"))
    assert [p.name for p in files] == [f"{t:05d}.png" for t in range(N)]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, *(p.name for p in files)]
    written = [read_mask_image(p) for p in files]
    assert all(set(np.unique(m)) <= {0, 255} for m in written)
    # Exactly the holes `remove` would use (same library path, default dilation).
    expected = list(holes(frames, {0: truth[0]}, RunConfig()))
    for m, e in zip(written, expected, strict=True):
        assert np.array_equal(m > 0, e)
    with open_video(preview) as reader:
        shown = [f.rgb.astype(np.int32) for f in reader.frames()]
    assert len(shown) == N
    for img, hole in zip(shown, expected, strict=True):
        inner = hole & ~dilate(~hole, 2)  # away from the outline (chroma is subsampled)
        r, g, b = (img[inner][:, c].mean() for c in range(3))
        assert r - g > 60 and b - g > 60  # magenta tint inside the hole
        far = ~dilate(hole, 3)
        r, g, b = (img[far][:, c].mean() for c in range(3))
        assert g > b  # the greenish background is left as it is


def test_an_empty_keyframe_says_the_object_is_absent(clip):
    # The object is there on frames 0-9; the user marks it on frame 4 and says on frame 2 and on
    # frame 7 that it is not there (an object that enters after frame 2 and leaves by frame 7).
    frames, truth = clip
    empty = np.zeros((H, W), bool)
    alone = propagate_masks(frames, {4: truth[4]}, TIGHT)
    absent = propagate_masks(frames, {2: empty, 4: truth[4], 7: empty}, TIGHT)
    for t in (0, 1, 8, 9):  # beyond the empty keyframes: nothing, and surely so
        assert alone[t].any()
        assert not absent[t].any()
        assert absent.confidence[t] == 1.0
    assert not absent[2].any() and not absent[7].any()  # keyframes keep their mask exactly
    # Between an empty keyframe and the object's, the object's own track (the union with an
    # empty one), as tight as from the object's keyframe alone.
    for t in (3, 5, 6):
        assert np.array_equal(absent[t], alone[t])
        assert _coverage(absent[t], truth[t]) > 0.9
    # The hint never points where the user said the object is absent.
    assert not set(suggest_keyframes(absent.confidence, [2, 4, 7])) & {0, 1, 8, 9}


def test_cli_takes_an_empty_keyframe(tmp_path, clip):
    frames, truth = clip
    folder, key = _write_clip(tmp_path, frames, truth)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((H, W), np.uint8))
    out = tmp_path / "m"
    args = ["-q", "mask", str(folder), "--dilate", "0", "-o", str(out)]
    res = runner.invoke(
        app, [*args, "--keyframe-mask", f"0:{key}", "--keyframe-mask", f"8:{blank}"]
    )
    assert res.exit_code == 0, res.output
    assert (read_mask_image(out / "00005.png") > 0).any()
    assert not (read_mask_image(out / "00009.png") > 0).any()


def test_cli_keyframe_folder_and_dilate(tmp_path, clip):
    frames, truth = clip
    folder, _ = _write_clip(tmp_path, frames, truth)
    keys = tmp_path / "keys"
    keys.mkdir()
    cv2.imwrite(str(keys / "00009.png"), truth[9].astype(np.uint8) * 255)
    out = tmp_path / "m"
    res = runner.invoke(
        app,
        [
            "-q",
            "mask",
            str(folder),
            "--mask",
            str(keys),
            "--keyframes",
            "--dilate",
            "0",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*.png"))) == N
    assert np.array_equal(read_mask_image(out / "00009.png") > 0, truth[9])  # dilate 0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: ("12", t[0]), "keyframe 12 is outside the clip"),
        (lambda t: ("0", np.ones((48, 64), bool)), "is 64x48 but the video frames are 128x96"),
        (lambda t: ("0", np.zeros((H, W), bool)), "every keyframe mask is empty"),
    ],
    ids=["index", "size", "empty"],
)
def test_cli_errors_exit_1(tmp_path, clip, make, message):
    frames, truth = clip
    folder, _ = _write_clip(tmp_path, frames, truth)
    index, mask = make(truth)
    key = tmp_path / "bad.png"
    cv2.imwrite(str(key), mask.astype(np.uint8) * 255)
    out = tmp_path / "masks"
    res = runner.invoke(
        app, ["-q", "mask", str(folder), "--keyframe-mask", f"{index}:{key}", "-o", str(out)]
    )
    assert res.exit_code == 1
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists()  # nothing half-written


def _sample_toy(n: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The first ``n`` frames of samples/clip.mp4, its reference masks (the toy grown by 7 px)
    and the toy itself (the references eroded by 7 px)."""
    import itertools

    root = Path(__file__).resolve().parents[1] / "samples"
    with open_video(root / "clip.mp4") as video:
        frames = [f.rgb for f in itertools.islice(video.frames(), n)]
    ref = [read_mask_image(root / "clip_masks" / f"{i:05d}.png") > 127 for i in range(n)]
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))
    toy = [cv2.erode(r.astype(np.uint8), disk).astype(bool) for r in ref]
    return frames, ref, toy


def test_tracks_the_toy_in_the_sample_clip():
    """Real footage: the pom-pom toy of samples/clip.mp4, tracked from frame 0's mask.

    samples/clip_masks are the toy's outline grown by 7 px (see samples/README.md); eroding them
    by 7 px again gives the toy itself, which every tracked mask must cover, without taking in
    much more than the grown reference.
    """
    n = 60
    frames, ref, toy = _sample_toy(n)
    root = Path(__file__).resolve().parents[1] / "samples"
    tracked = propagate_masks(frames, {0: read_mask_image(root / "clip_mask.png") > 127})
    for t in range(1, n):
        assert _coverage(tracked[t], toy[t]) > 0.99, f"frame {t}"
        assert tracked[t].sum() < 1.5 * ref[t].sum(), f"frame {t}"


def test_the_command_mask_suggests_removes_the_same_holes_as_the_keyframes(tmp_path, clip):
    # `mask` writes holes grown already; the command it prints (`--dilate 0`) makes `remove`
    # change the same pixels as `remove --keyframe-mask`: outside the written holes nothing,
    # inside them the same fill but for the growth ring, which the keyframe run feathers into
    # the frame (it knows the object's own outline, a mask folder does not).
    frames, truth = clip
    folder, key = _write_clip(tmp_path, frames, truth)
    masks = tmp_path / "masks"
    res = _track_cli(folder, key, masks)
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("remove with them:"))
    assert f"--mask {masks} --dilate 0" in line
    holes_written = [read_mask_image(f) > 0 for f in sorted(masks.glob("*.png"))]
    grow = RunConfig().masks.dilate_px

    def run(name: str, *given: str) -> list[np.ndarray]:
        out = tmp_path / name
        args = ["-q", "remove", str(folder), *given, "--engine", "telea", "-o", str(out)]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        return [cv2.imread(str(f)) for f in sorted(out.glob("*.png"))]

    from_masks = run("from_masks", "--mask", str(masks), "--dilate", "0")
    from_key = run("from_keyframe", "--keyframe-mask", f"0:{key}")
    twice = run("twice", "--mask", str(masks))  # remove's default growth on top
    assert len(from_masks) == len(from_key) == N
    for t in range(N):
        hole = holes_written[t]
        inner = ~dilate(~hole, grow)  # the hole less its growth ring
        differ = (from_masks[t] != from_key[t]).any(axis=2)
        assert not (differ & ~hole).any() and not (differ & inner).any(), t
        original = frames[t][..., ::-1]  # BGR, as cv2 reads the outputs
        assert np.array_equal(from_masks[t][~hole], original[~hole])
    # Grown a second time, pixels outside the written holes change.
    assert any(
        (twice[t] != frames[t][..., ::-1]).any(axis=2)[~holes_written[t]].any() for t in range(N)
    )


def test_cli_remove_with_keyframes_shows_tracking_progress(tmp_path, clip):
    """`remove --keyframe-mask` tracks the whole clip before removing the first frame: a `track`
    bar shows that work instead of a `remove` bar standing still at 0."""
    frames, truth = clip
    folder, key = _write_clip(tmp_path, frames, truth)
    res = runner.invoke(
        app,
        [
            "remove",
            str(folder),
            "--keyframe-mask",
            f"{N - 1}:{key}",
            "--engine",
            "telea",
            "-o",
            str(tmp_path / "out"),
            "--report",
            str(tmp_path / "report.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    track = [line for line in res.output.replace("\r", "\n").splitlines() if "track:" in line]
    assert track and f"{2 * N - 1}/{2 * N - 1}" in track[-1], track[-3:]
    assert "remove:" in res.output
    # The removal's report carries the tracking's confidence and its suggested keyframes.
    tracking = json.loads((tmp_path / "report.json").read_text())["tracking"]
    conf = tracking["confidence"]
    assert len(conf) == N and conf[N - 1] == 1.0 and all(0 <= c <= 1 for c in conf)
    first = tracking["suggested_keyframes"][0]
    assert first != N - 1 and conf[first] == min(conf[: N - 1])


def test_cli_progress_bars_end_full_with_several_keyframes(tmp_path, clip):
    """`mask` and `remove` with three keyframes: the tracking bar's total is the work done (the
    backward pass does not track the keyframes), so each bar ends at its total."""
    frames, truth = clip
    folder, _ = _write_clip(tmp_path, frames, truth)
    keys = []
    for k in (2, 5, 8):
        cv2.imwrite(str(tmp_path / f"k{k}.png"), truth[k].astype(np.uint8) * 255)
        keys += ["--keyframe-mask", f"{k}:{tmp_path / f'k{k}.png'}"]
    steps = tracking_steps(N, (2, 5, 8))
    for cmd, desc, total in (("mask", "mask:", steps + N), ("remove", "track:", steps)):
        extra = ["--engine", "telea"] if cmd == "remove" else []
        res = runner.invoke(app, [cmd, str(folder), *keys, *extra, "-o", str(tmp_path / cmd)])
        assert res.exit_code == 0, res.output
        bar = [x for x in res.output.replace("\r", "\n").splitlines() if desc in x]
        assert bar and f"{total}/{total}" in bar[-1], bar[-2:]


def test_cli_masks_are_named_like_the_input_frames(tmp_path, clip):
    """A folder of frames gets masks named like its frames (each mask pairs with its frame), and
    `remove --mask` reads them back."""
    frames, truth = clip
    folder, key = _write_clip(tmp_path, frames, truth, name="shot_1{:03d}.png")  # from 1000
    out = tmp_path / "masks"
    res = runner.invoke(
        app, ["-q", "mask", str(folder), "--keyframe-mask", f"0:{key}", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.png")) == [f"shot_1{t:03d}.png" for t in range(N)]
    res = runner.invoke(
        app,
        [
            "-q",
            "remove",
            str(folder),
            "--mask",
            str(out),
            "--engine",
            "telea",
            "-o",
            str(tmp_path / "removed"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "removed").glob("*.png"))) == N


def _clip_with_line(n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The moving square of :func:`_clip` with a 2 px line (a kite line, a cable) rising from its
    top-right corner and moving with it. Returns frames, true masks and the line's own masks."""
    frames, truth = _clip(n)
    line = np.zeros_like(truth)
    for t in range(n):
        x, y = 20 + SHIFT[0] * t + SIDE - 4, 20 + SHIFT[1] * t
        for k in range(min(y, 18)):  # up and to the right, 2 px wide
            line[t, y - 1 - k, x + k // 3 : x + k // 3 + 2] = True
        frames[t][line[t]] = (40, 40, 60)
    return frames, truth | line, line


def test_thin_parts_are_carried_with_the_object():
    """A line two pixels wide stays in the mask as its object moves (GrabCut's re-fit sees it as
    background, so it is carried as its own layer by the object's motion)."""
    frames, truth, line = _clip_with_line()
    tracked = propagate_masks(frames, {0: truth[0]}, RunConfig())
    for t in range(1, N):
        # Without the thin layer the line is gone by frame 4 (coverage 0.19).
        assert _coverage(tracked[t], line[t]) > 0.85, f"frame {t}"
        assert _coverage(tracked[t], truth[t]) > 0.98, f"frame {t}"
        assert tracked[t].sum() <= 2.5 * truth[t].sum(), f"frame {t}"


def test_suggest_keyframes_least_sure_first_spread_out():
    conf = [1.0, 0.9, 0.8, 0.3, 0.35, 0.7, 0.6, 0.65, 0.2, 0.9, 0.5, 1.0]
    # Frame 8 (0.2) first, then 3 (0.3); every other frame is within 3 frames (the spacing for
    # a 12-frame clip) of one of them.
    assert suggest_keyframes(conf, [0, 11], count=3) == [8, 3]
    assert suggest_keyframes(conf, [0, 8, 11], count=1) == [3]
    assert suggest_keyframes([1.0, 0.2], [0, 1]) == []


def test_confidence_is_one_on_keyframes_and_falls_when_the_track_fails():
    """On the moving square the tracker stays sure; when the object vanishes (its pixels replaced
    by background at frame 5) the mask follows nothing the object model knows and the confidence
    drops."""
    frames, truth = _clip()
    good = propagate_masks(frames, {0: truth[0]}, RunConfig())
    assert good.confidence[0] == 1.0 and min(good.confidence) > 0.7
    gone = frames.copy()
    bg = _texture(H, W + 2 * N, 6, seed=1, tint=(0.6, 0.9, 0.7))  # _clip's background alone
    for t in range(5, N):
        x = -PAN[0] * t
        gone[t] = bg[:, x : x + W]
    lost = propagate_masks(gone, {0: truth[0]}, RunConfig())
    assert max(lost.confidence[6:]) < min(good.confidence) - 0.2, (lost.confidence, good.confidence)
    assert suggest_keyframes(lost.confidence, [0])[0] >= 5


def test_cli_report_and_hint(tmp_path, clip):
    frames, truth = clip
    folder, key = _write_clip(tmp_path, frames, truth)
    out, report = tmp_path / "masks", tmp_path / "track.json"
    res = _track_cli(folder, key, out, "--report", str(report))
    assert res.exit_code == 0, res.output
    data = json.loads(report.read_text())
    frames_info = data["frames"]
    assert [f["index"] for f in frames_info] == list(range(N))
    assert frames_info[0] == {"index": 0, "keyframe": True, "confidence": 1.0}
    conf = [f["confidence"] for f in frames_info]
    first = data["suggested_keyframes"][0]
    assert first != 0 and conf[first] == min(conf[1:])
    assert f"add a keyframe near frame {first}" in res.output
    assert data["hint"] in res.output
    # --report describes tracking; with --detect-overlays it is refused, nothing written.
    bad = runner.invoke(
        app,
        [
            "mask",
            str(folder),
            "--detect-overlays",
            "-o",
            str(tmp_path / "o"),
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert bad.exit_code != 0 and "--report" in bad.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "r.json").exists()


def test_more_keyframes_never_hurt_on_real_footage():
    """The toy of samples/clip.mp4 over 60 frames: with keyframes at 0, 20 and 40 every frame is
    covered at least as well as from frame 0's keyframe alone (to within 1 %)."""
    n = 60
    frames, ref, toy = _sample_toy(n)
    one = propagate_masks(frames, {0: ref[0]})
    many = propagate_masks(frames, {k: ref[k] for k in (0, 20, 40)})
    for t in range(n):
        assert _coverage(many[t], toy[t]) >= _coverage(one[t], toy[t]) - 0.01, f"frame {t}"
    assert np.mean([many[t].sum() for t in range(n)]) <= 1.2 * np.mean(
        [one[t].sum() for t in range(n)]
    )


def test_carry_on_keeps_the_arriving_track_only_near_the_restarted_one():
    own = np.zeros((60, 80), bool)
    own[20:40, 20:40] = True
    arriving = own.copy()
    arriving[20:40, 40:46] = True  # a leading strip the restarted track left out: 6 px
    arriving[5:10, 70:78] = True  # something the old track carried off: 30 px away
    out = carry_on(own, arriving)
    assert out[own].all() and out[20:40, 40:46].all()
    assert not out[5:10, 70:78].any()
    assert out.sum() == own.sum() + 20 * 6
    assert np.array_equal(carry_on(own, np.zeros_like(own)), own)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_a_track_arriving_at_a_keyframe_goes_on_past_it(clip, monkeypatch, direction):
    """A keyframe painted short (the moving square's leading 6 px left out): the track that
    reached it from the other keyframe goes on past it and holds the part, where the track the
    short keyframe restarts alone loses it (forward: the frames after it; backward: before)."""
    frames, truth = clip
    if direction == "forward":
        k, other, after = 5, 0, range(6, N)
        short = truth[k].copy()
        short[:, np.nonzero(short.any(axis=0))[0].max() - 5 :] = False
    else:
        k, other, after = 4, N - 1, range(3, -1, -1)
        short = truth[k].copy()
        short[:, : np.nonzero(short.any(axis=0))[0].min() + 6] = False
    keys = {other: truth[other], k: short}
    carried = propagate_masks(frames, keys, TIGHT)
    monkeypatch.setattr(propagate_module, "carry_on", lambda own, arriving: own)
    alone = propagate_masks(frames, keys, TIGHT)
    first = next(iter(after))
    assert _coverage(carried[first], truth[first]) >= _coverage(alone[first], truth[first]) + 0.03
    for t in after:
        assert _coverage(carried[t], truth[t]) >= 0.96, f"frame {t}"
        assert alone[t][~carried[t]].sum() == 0  # it only adds
        assert carried[t].sum() <= 1.05 * truth[t].sum()  # and only near the object


def test_later_keyframes_keep_what_the_first_keyframe_alone_gives(clip, monkeypatch):
    """Two keyframes painted short after a good one (the moving square's leading 6 px left out
    at 3 and 6): past each, every frame is covered as well as from the first keyframe alone,
    since the first keyframe's track goes on past them (the restarted tracks alone lose the
    part: frame 7 at 0.95)."""
    frames, truth = clip

    def short(k: int) -> np.ndarray:
        m = truth[k].copy()
        m[:, np.nonzero(m.any(axis=0))[0].max() - 5 :] = False
        return m

    keys = {0: truth[0], 3: short(3), 6: short(6)}
    one = propagate_masks(frames, {0: truth[0]}, TIGHT)
    carried: list[np.ndarray] = []

    def spy(own: np.ndarray, arriving: np.ndarray) -> np.ndarray:
        carried.append(arriving)
        return carry_on(own, arriving)

    monkeypatch.setattr(propagate_module, "carry_on", spy)
    many = propagate_masks(frames, keys, TIGHT)
    # The track carried past both keyframes is the first keyframe's, to the pixel: the same
    # masks as from that keyframe alone (frames 4, 5, 7, 8, 9; in any order).
    assert len(carried) == 5
    for t in (4, 5, 7, 8, 9):
        assert sum(np.array_equal(got, one[t]) for got in carried) == 1, f"frame {t}"
    for t in (1, 2, 4, 5, 7, 8, 9):
        assert _coverage(many[t], truth[t]) >= _coverage(one[t], truth[t]) - 0.005, f"frame {t}"
        assert many[t].sum() <= 1.05 * truth[t].sum()
    monkeypatch.setattr(propagate_module, "carry_on", lambda own, arriving: own)
    alone = propagate_masks(frames, keys, TIGHT)
    assert _coverage(alone[7], truth[7]) < _coverage(one[7], truth[7]) - 0.02


def test_later_keyframes_add_to_the_colour_model_instead_of_replacing_it(clip, monkeypatch):
    # The object looks different on the second keyframe (blue instead of red): every track
    # started there, forward and backward, judges colours against both looks.
    frames, truth = clip
    frames = frames.copy()
    frames[5][truth[5]] = (20, 20, 230)
    models = []
    reset = MaskTracker.reset

    def spy(self, small, mask, colours=None):  # type: ignore[no-untyped-def]
        reset(self, small, mask, colours)
        models.append(self._obj_colours.copy())

    monkeypatch.setattr(MaskTracker, "reset", spy)
    propagate_masks(frames, {0: truth[0], 5: truth[5]}, TIGHT)
    blue = [float((m[:, 2] > 200).mean()) for m in models]
    assert len(blue) == 3  # forward from 0, forward from 5, backward from 5 to 0
    assert blue[0] == 0.0  # the first keyframe alone
    assert all(0.3 < b < 0.7 for b in blue[1:]), blue  # both keyframes' colours


def test_pooled_colours_are_thinned_evenly_and_one_keyframe_is_kept_as_is():
    rng = np.random.default_rng(0)
    one = rng.integers(0, 256, (70_000, 3), dtype=np.uint8)
    assert _pooled([one]) is one
    both = _pooled([one, np.zeros((50_000, 3), np.uint8)])
    assert 55_000 <= len(both) <= 60_000
    # Evenly: each keyframe keeps its share (70 : 50).
    assert abs(float((both == 0).all(axis=1).mean()) - 50 / 120) < 0.01


def _tracker_on_still_frame(lost: bool) -> tuple[MaskTracker, np.ndarray, np.ndarray]:
    """A tracker (no colour re-fit, no safety margin, working size = frame size) one step into a
    still frame with a square mask, its state set as after steps that went well (``lost``
    False) or as after the mask lost the object's colours with something moving with the
    background in it (``lost`` True), the object's own shift having been 3 px to the right."""
    frame = _texture(H, W, 6, seed=1, tint=(0.6, 0.9, 0.7))
    mask = np.zeros((H, W), bool)
    mask[30:60, 40:70] = True
    cfg = PropagationConfig(safety_px=0, colour_refine=False, flow_max_side_px=max(H, W))
    tracker = MaskTracker(cfg, H, W)
    tracker.reset(frame, mask)
    tracker._last_shift = np.array([3.0, 0.0], np.float32)
    tracker._ref_share = 0.9
    tracker._share = 0.3 if lost else 0.9
    tracker._strays = [0.2 if lost else 0.0]
    return tracker, frame, mask


def test_a_lost_mask_coasts_on_the_objects_last_shift():
    """When the mask has lost the object's colours just after something moving with the
    background crossed it (a tree in front of a rider), it is carried by the object's last own
    shift, not by the flow (which follows what passes in front); otherwise by the flow."""
    tracker, frame, mask = _tracker_on_still_frame(lost=True)
    coasted = tracker.step(frame)
    assert tracker._coasting == 1
    assert np.array_equal(coasted, np.roll(mask, 3, axis=1))
    tracker, frame, mask = _tracker_on_still_frame(lost=False)
    followed = tracker.step(frame)  # a still frame: the flow says the object did not move
    assert tracker._coasting == 0
    assert _iou(followed, mask) > 0.95
    # The shift learnt from this step is the flow's (about zero), not the one set before it.
    assert tracker._last_shift is not None and np.abs(tracker._last_shift).max() < 0.5


def test_coasting_stops_after_its_limit_and_a_keyframe_clears_it():
    import lama_video.propagate as propagate

    tracker, frame, mask = _tracker_on_still_frame(lost=True)
    for k in range(1, propagate._MAX_COAST + 2):
        tracker._share = 0.3  # still lost
        tracker.step(frame)
        assert tracker._coasting == (k if k <= propagate._MAX_COAST else 0), k
    tracker._share, tracker._strays = 0.3, [0.2]
    tracker.step(frame)
    assert tracker._coasting == 1
    tracker.reset(frame, mask)
    assert tracker._coasting == 0 and tracker._last_shift is None and tracker._strays == []
