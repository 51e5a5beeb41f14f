"""Tests of lama_video.engines.exemplar (PatchMatch texture synthesis, needs no weights)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from lama_video.config import InpaintConfig
from lama_video.engines import ImageEngine, make_image_engine
from lama_video.engines.classical import ClassicalEngine
from lama_video.engines.exemplar import ExemplarEngine
from lama_video.video import VideoReader

MEDIA = Path(__file__).parent / "fixtures" / "media"


def _smooth_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three 60x90 gradient frames with noise: a middle hole, two border holes, no hole."""
    rng = np.random.default_rng(seed)
    h, w = 60, 90
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 2.5, yy * 3.5, (xx + yy) * 1.5], axis=-1).astype(np.float64)
    frames = np.clip(base[None] + rng.normal(0, 3, (3, h, w, 3)), 0, 255).astype(np.uint8)
    masks = np.zeros((3, h, w), bool)
    masks[0, 20:35, 30:50] = True
    masks[1, 0:12, 0:15] = True  # touches the top-left corner
    masks[1, 45:, 70:] = True  # and the bottom-right one
    return frames, masks


def _periodic(kind: str, seed: int = 0, size: int = 96) -> np.ndarray:
    """A strongly periodic colour texture (period 8 px) with mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "stripes":
        base = np.where(((xx + yy) // 4) % 2 == 0, 60.0, 190.0)
    else:  # checker
        base = np.where((xx // 4 + yy // 4) % 2 == 0, 60.0, 190.0)
    img = np.stack([base, base * 0.8 + 20, 255 - base], axis=-1) + rng.normal(0, 6, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _texture(img: np.ndarray, hole: np.ndarray) -> float:
    """Mean absolute Laplacian of the luma inside ``hole`` (high-frequency energy)."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F))[hole].mean())


def _mae(a: np.ndarray, b: np.ndarray, hole: np.ndarray) -> float:
    return float(np.abs(a[hole].astype(int) - b[hole].astype(int)).mean())


# -------------------------------------------------------------------------------- contract


def test_contract_outside_bit_exact_shapes_and_empty_mask() -> None:
    frames, masks = _smooth_batch()
    before = frames.copy()
    eng = ExemplarEngine()
    assert isinstance(eng, ImageEngine) and eng.name == "exemplar"
    out = eng.inpaint(frames, masks)
    assert out.shape == frames.shape and out.dtype == np.uint8 and out is not frames
    assert np.array_equal(frames, before)  # the input is not written to
    assert np.array_equal(out[~masks], frames[~masks])
    assert np.array_equal(out[2], frames[2])  # no hole: unchanged
    # Copied from a smooth gradient, the fill stays close to the hidden truth. Patches can only
    # repeat colours that exist, so a gradient's corners (extrapolation) are looser.
    assert _mae(out[0], frames[0], masks[0]) < 15
    assert _mae(out[1], frames[1], masks[1]) < 35
    assert np.array_equal(eng(frames, masks), out)  # __call__ is inpaint


@pytest.mark.parametrize("threads", [1, 2])
def test_deterministic_and_independent_of_the_batch(
    threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch's frames are filled on several threads: the same fill, bit for bit, either way.
    from lama_video.engines import exemplar

    monkeypatch.setattr(exemplar, "WORKER_THREADS", threads)
    frames, masks = _smooth_batch(seed=3)
    eng = ExemplarEngine()
    first = eng.inpaint(frames, masks)
    assert np.array_equal(first, ExemplarEngine().inpaint(frames, masks))
    alone = np.stack([eng.inpaint(frames[i : i + 1], masks[i : i + 1])[0] for i in range(3)])
    assert np.array_equal(first, alone)


def test_non_contiguous_inputs_give_the_contiguous_result() -> None:
    frames, masks = _smooth_batch(seed=4)
    flipped, flipped_masks = frames[:, ::-1, ::-1], masks[:, ::-1, ::-1]
    assert not flipped.flags.c_contiguous and not flipped_masks.flags.c_contiguous
    got = ExemplarEngine().inpaint(flipped, flipped_masks)
    want = ExemplarEngine().inpaint(
        np.ascontiguousarray(flipped), np.ascontiguousarray(flipped_masks)
    )
    assert np.array_equal(got, want)


def test_tiny_frames_and_near_full_holes_do_not_crash() -> None:
    eng = ExemplarEngine()
    rng = np.random.default_rng(5)
    cases = []
    tiny = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    hole = np.zeros((1, 8, 8), bool)
    hole[0, 3:5, 2:6] = True
    cases.append((tiny, hole))
    cases.append((tiny, np.ones((1, 8, 8), bool)))  # nothing known at all
    one = rng.integers(0, 256, (1, 1, 1, 3), dtype=np.uint8)
    cases.append((one, np.ones((1, 1, 1), bool)))
    frame = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    almost = np.ones((1, 64, 64), bool)
    almost[0, :5, :5] = False  # a few whole 3x3 patches known
    cases.append((frame, almost))
    for f, m in cases:
        out = eng.inpaint(f, m)
        assert out.shape == f.shape and out.dtype == np.uint8
        assert np.array_equal(out[~m], f[~m])


def test_fewer_known_pixels_than_a_patch_falls_back_to_telea() -> None:
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 256, (1, 40, 40, 3), dtype=np.uint8)
    hole = np.ones((1, 40, 40), bool)
    hole[0, :, :2] = False  # a 2-px column: no 3x3 patch is wholly known
    got = ExemplarEngine(fallback_radius_px=4).inpaint(frame, hole)
    assert np.array_equal(got, ClassicalEngine("telea", radius_px=4).inpaint(frame, hole))


def test_work_stays_near_the_hole() -> None:
    """Pixels far outside the hole's context margin do not change the fill; two distant holes
    are filled as if each were alone."""
    rng = np.random.default_rng(7)
    frame = np.clip(
        rng.normal(128, 40, (1, 240, 320, 3)) + np.arange(320)[None, None, :, None] * 0.2, 0, 255
    ).astype(np.uint8)
    a = np.zeros((1, 240, 320), bool)
    a[20:40, 20:44] = True
    b = np.zeros_like(a)
    b[190:215, 270:300] = True
    eng = ExemplarEngine()
    fill_a = eng.inpaint(frame, a)
    changed = frame.copy()
    changed[:, 150:, 150:] = 0  # far from hole a (margin 3 * 7 + 24 // 2 = 33 px)
    assert np.array_equal(eng.inpaint(changed, a)[a], fill_a[a])
    both = eng.inpaint(frame, a | b)
    assert np.array_equal(both[a], fill_a[a])
    assert np.array_equal(both[b], eng.inpaint(frame, b)[b])


def test_nearby_holes_share_one_crop_and_far_ones_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """Specks of hole a few pixels apart (what propagation leaves unseen round an object) are
    filled on one crop: the fixed cost of a crop (its patch statistics, its descriptors) is paid
    once, not once per speck. Holes whose crops do not overlap keep their own."""
    rng = np.random.default_rng(11)
    frame = np.clip(rng.normal(128, 30, (1, 240, 320, 3)), 0, 255).astype(np.uint8)
    specks = np.zeros((1, 240, 320), bool)
    for y, x in ((40, 40), (40, 75), (70, 50), (95, 90), (60, 120)):
        specks[0, y : y + 3, x : x + 4] = True
    far = np.zeros_like(specks)
    far[0, 200:210, 280:300] = True
    seen: list[tuple[int, int]] = []
    real = ExemplarEngine._fill_crop

    def spy(self: ExemplarEngine, crop: np.ndarray, hole: np.ndarray, rng: np.random.Generator):
        seen.append(crop.shape[:2])
        return real(self, crop, hole, rng)

    monkeypatch.setattr(ExemplarEngine, "_fill_crop", spy)
    out = ExemplarEngine().inpaint(frame, specks | far)
    assert len(seen) == 2  # the five specks together, the far hole alone
    assert np.array_equal(out[~(specks | far)], frame[~(specks | far)])
    # Each speck is filled with the crop's colours, not left as it was or smeared to black.
    assert not np.array_equal(out[specks], frame[specks])
    assert abs(float(out[specks].mean()) - 128) < 20


def test_merged_boxes_merge_overlaps_that_do_not_grow_the_work() -> None:
    from lama_video.engines.exemplar import _merged_boxes

    boxes = [
        (0, 10, 0, 10),  # a and b overlap mostly: one 12x12 box (144 px against 200)
        (2, 12, 2, 12),
        (10, 20, 0, 12),  # c then joins them: 20x12 against 144 + 120
        (40, 50, 40, 50),  # apart
        (100, 110, 100, 110),  # e and f touch at a corner only: their box (361 px) would be
        (109, 119, 109, 119),  # larger than the two (200 px), so each keeps its own
    ]
    got = sorted((box, sorted(groups)) for box, groups in _merged_boxes(boxes))
    assert got == [
        ((0, 20, 0, 12), [0, 1, 2]),
        ((40, 50, 40, 50), [3]),
        ((100, 110, 100, 110), [4]),
        ((109, 119, 109, 119), [5]),
    ]
    assert _merged_boxes([]) == []
    # Touching edges (half-open boxes) are not an overlap.
    assert len(_merged_boxes([(0, 10, 0, 10), (10, 20, 0, 10)])) == 2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="patch_px"):
        ExemplarEngine(patch_px=6)
    with pytest.raises(ValueError, match="iterations"):
        ExemplarEngine(iterations=0)
    with pytest.raises(ValueError, match="fallback_radius_px"):
        ExemplarEngine(fallback_radius_px=0)
    frames, masks = _smooth_batch()
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        ExemplarEngine().inpaint(frames.astype(np.float32), masks)
    with pytest.raises(ValueError, match=r"\(N, H, W\) bool"):
        ExemplarEngine().inpaint(frames, masks.astype(np.uint8))


# --------------------------------------------------------------------------------- quality


@pytest.mark.parametrize("kind", ["stripes", "checker"])
def test_periodic_texture_is_continued_with_its_period(kind: str) -> None:
    img = _periodic(kind)
    middle = np.zeros(img.shape[:2], bool)
    middle[36:60, 36:60] = True  # 24x24, three periods
    edge = np.zeros_like(middle)
    edge[70:96, 0:20] = True  # touches the left and bottom borders
    both = (middle | edge)[None]
    ex = ExemplarEngine().inpaint(img[None], both)[0]
    te = ClassicalEngine("telea").inpaint(img[None], both)[0]
    for hole in (middle, edge):
        # The pattern continues in phase: the error is at the noise level (std 6), Telea's is not.
        ex_mae, te_mae = _mae(ex, img, hole), _mae(te, img, hole)
        assert ex_mae < 12 and ex_mae < te_mae / 4, (ex_mae, te_mae)
        # High-frequency energy is kept (a blurred or smoothed fill loses it).
        truth = _texture(img, hole)
        ex_ratio, te_ratio = _texture(ex, hole) / truth, _texture(te, hole) / truth
        assert ex_ratio >= 0.7 and te_ratio <= 0.3, (ex_ratio, te_ratio)


def test_real_photo_fill_keeps_texture_that_telea_smooths() -> None:
    """A striped shirt (first frame of ``opus.mkv``, a real clip), two holes in it."""
    with VideoReader(MEDIA / "opus.mkv") as reader:
        frame = next(iter(reader.frames())).rgb
    frames = np.stack([frame, frame])
    masks = np.zeros((2, *frame.shape[:2]), bool)
    masks[0, 102:138, 187:238] = True
    masks[1, 120:168, 213:298] = True
    ex = ExemplarEngine().inpaint(frames, masks)
    te = ClassicalEngine("telea").inpaint(frames, masks)
    for i in range(2):
        hole = masks[i]
        truth = _texture(frame, hole)
        ex_ratio, te_ratio = _texture(ex[i], hole) / truth, _texture(te[i], hole) / truth
        assert ex_ratio >= 0.6 and ex_ratio >= 2 * te_ratio, (i, ex_ratio, te_ratio)
        # Texture, not noise: the colours stay about as close to the truth as Telea's smooth fill.
        assert _mae(ex[i], frame, hole) < 1.5 * _mae(te[i], frame, hole), i


# --------------------------------------------------------------------------------- factory


def test_factory_gives_the_exemplar_engine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    eng = make_image_engine(InpaintConfig(engine="exemplar", classical_radius_px=9))
    assert isinstance(eng, ExemplarEngine) and eng.name == "exemplar"
    assert eng.fallback_radius_px == 9
    with caplog.at_level(logging.INFO, logger="lama_video.engines"):
        auto = make_image_engine(InpaintConfig(engine="auto", model=str(tmp_path / "none.ckpt")))
    assert isinstance(auto, ExemplarEngine)
    notices = [r.getMessage() for r in caplog.records if r.name == "lama_video.engines"]
    assert len(notices) == 1 and "exemplar engine (PatchMatch texture synthesis)" in notices[0]
    telea = make_image_engine(InpaintConfig(engine="telea"))
    assert isinstance(telea, ClassicalEngine) and telea.name == "telea"  # still available


def test_copied_patches_take_their_brightness_from_the_structure_fill() -> None:
    # A shadow (dark, fine texture) beside a bright lit area with the same texture: a hole in the
    # shadow next to the light and the frame's edge, so most whole known patches are lit. Patches
    # alone copy lit texture into the shadow; with the structure split the hole takes its
    # brightness from the harmonic fill's low frequencies and keeps the texture of the patches.
    rng = np.random.default_rng(5)
    tex = cv2.GaussianBlur(rng.normal(0, 25, (96, 128)).astype(np.float32), (0, 0), 0.7)
    base = np.where(np.arange(128)[None, :] < 64, 50.0, 200.0).astype(np.float32)
    img = np.repeat(np.clip(base + tex, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    hole = np.zeros((96, 128), bool)
    hole[30:66, 30:62] = True  # in the shadow, its right edge 2 px from the light
    truth = img.copy()
    frames, masks = img[None], hole[None]
    split = ExemplarEngine().inpaint(frames, masks)[0]
    alone = ExemplarEngine(structure_sigma_px=0).inpaint(frames, masks)[0]
    telea = ClassicalEngine("telea").inpaint(frames, masks)[0]

    def low(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a[..., 0].astype(np.float32), (0, 0), 4.0)[hole]

    # Brightness: patches alone fill this shadow with lit texture (low-frequency error about 110
    # levels); the split brings the error down to about 16 (Telea: 6).
    err_split = float(np.abs(low(split) - low(truth)).mean())
    err_alone = float(np.abs(low(alone) - low(truth)).mean())
    assert err_alone > 60.0
    assert err_split < 0.25 * err_alone
    assert err_split > float(np.abs(low(telea) - low(truth)).mean())  # the split is not Telea
    # Texture: the patches' detail survives the split (Telea alone has almost none).
    assert _texture(split, hole) > 0.6 * _texture(truth, hole)
    assert _texture(telea, hole) < 0.3 * _texture(truth, hole)


def test_blas_runs_single_threaded_inside_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenBLAS threads spinning after the engine's small BLAS calls starved the decode and encode
    # threads (the removal of an 854x480 clip took 1.35x longer): the engine limits BLAS to one
    # thread while it works, and gives the limit back afterwards.
    from threadpoolctl import threadpool_info

    seen: list[list[int]] = []
    real = ExemplarEngine.fill_frame

    def spy(self: ExemplarEngine, frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
        seen.append([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"])
        return real(self, frame, hole)

    monkeypatch.setattr(ExemplarEngine, "fill_frame", spy)
    frames, masks = _smooth_batch()
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    assert before, "numpy's BLAS (OpenBLAS in its wheels) should be visible to threadpoolctl"
    ExemplarEngine().inpaint(frames, masks)
    assert seen and all(n == [1] * len(n) for n in seen)
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before
