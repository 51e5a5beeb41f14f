"""Tests of lama_video.train.masks (LaMa's stroke / box hole generators and presets)."""

from __future__ import annotations

import numpy as np
import pytest

from lama_video.errors import ConfigError
from lama_video.train.masks import (
    PRESETS,
    BoxSpec,
    MaskGenerator,
    MaskMix,
    StrokeSpec,
    draw_boxes,
    draw_strokes,
    get_preset,
    hole_areas,
    scale_mix,
)

EVAL_PRESETS = [n for n in PRESETS if n != "big-lama"]


def test_presets_follow_lama_configs() -> None:
    big = get_preset("big-lama")
    s = big.stroke
    assert (s.max_len, s.max_width, s.min_times, s.max_times) == (200, 100, 1, 5)
    assert (big.box.margin, big.box.bbox_min_size, big.box.bbox_max_size) == (10, 30, 150)
    assert big.stroke_proba == big.box_proba  # 50 % strokes, 50 % boxes
    assert get_preset("thin_512").stroke.max_times == 70
    assert get_preset("thick_512").box.bbox_max_size == 300
    for name in EVAL_PRESETS:
        mix = get_preset(name)
        assert mix.max_area == 0.5
        assert mix.size_px == int(name.split("_")[1])
    with pytest.raises(ConfigError, match="thin_256"):
        get_preset("thin-256")


@pytest.mark.parametrize("name", EVAL_PRESETS)
def test_eval_preset_area_distribution(name: str) -> None:
    mix = get_preset(name)
    # 512-px presets are drawn at 256 px with every length halved (scale_mix) to keep the test fast.
    gen = MaskGenerator(scale_mix(mix, 256) if mix.size_px == 512 else mix, seed=1)
    areas = hole_areas(gen.generate(60))
    assert areas.min() > 0.0  # no empty mask
    assert areas.max() <= 0.5  # max_tamper_area of LaMa's data_gen configs
    # Many strokes/boxes: typical masks cover a tenth to a half of the image, never almost none.
    assert 0.15 < areas.mean() < 0.40
    assert np.percentile(areas, 10) > 0.02
    assert areas.std() > 0.05  # a spread of sizes, not one mask size


def _corner_windows(m: np.ndarray) -> int:
    """Number of 2x2 windows holding 1 or 3 hole pixels (box corners, or stroke edge steps)."""
    win = m[:-1, :-1].astype(int) + m[1:, :-1] + m[:-1, 1:] + m[1:, 1:]
    return int(((win == 1) | (win == 3)).sum())


def test_big_lama_training_mix_is_half_boxes_and_unbounded() -> None:
    masks = MaskGenerator("big-lama", seed=3).generate(200)
    areas = hole_areas(masks)
    # A union of <= 4 rectangles has at most a few dozen corner windows; thick cv2 lines at
    # non-axis angles with round caps have hundreds of staircase steps on their edges.
    box_like = np.mean([_corner_windows(m) <= 64 for m in masks])
    assert 0.38 < box_like < 0.62  # irregular_proba = box_proba = 1 -> 50 / 50
    assert areas.max() > 0.5  # training masks are not area-limited ("aggressive" masks)
    assert 0.2 < areas.mean() < 0.5


def test_same_seed_same_masks_other_seed_differs() -> None:
    a = MaskGenerator("medium_256", seed=7).generate(5)
    b = MaskGenerator("medium_256", seed=7).generate(5)
    c = MaskGenerator("medium_256", seed=8).generate(5)
    assert a.dtype == bool and a.shape == (5, 256, 256)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shared_rng_is_advanced() -> None:
    rng = np.random.default_rng(0)
    gen = MaskGenerator("thick_256", rng=rng)
    first, second = gen(64, 96), gen(64, 96)
    assert first.shape == (64, 96)
    assert not np.array_equal(first, second)


def test_boxes_respect_sizes_and_margin() -> None:
    rng = np.random.default_rng(0)
    spec = BoxSpec(margin=5, bbox_min_size=10, bbox_max_size=20, min_times=1, max_times=1)
    for _ in range(50):
        m = draw_boxes(rng, 48, 64, spec)
        ys, xs = np.nonzero(m)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert 10 <= h <= 20 and 10 <= w <= 20
        assert m.sum() == h * w  # one filled rectangle
        assert ys.min() >= 5 and xs.min() >= 5 and ys.max() < 48 - 5 and xs.max() < 64 - 5
    with pytest.raises(ConfigError, match="canvas"):
        draw_boxes(rng, 18, 30, spec)  # 8 px left between margins


def test_stroke_count_and_width_bounds() -> None:
    rng = np.random.default_rng(0)
    one = StrokeSpec(max_angle=4, max_len=1, max_width=1, min_times=0, max_times=0)
    # max_times 0 still allows up to one stroke (LaMa's +1); a stroke with 1..5 segments of
    # length 10 and brush 5 covers less than 5 * (10 + 5) * 5 pixels.
    areas = [draw_strokes(rng, 100, 100, one).sum() for _ in range(100)]
    assert min(areas) == 0 and max(areas) > 0
    assert max(areas) <= 5 * 15 * 6


def test_scale_mix_keeps_area_roughly() -> None:
    mix = get_preset("thick_512")
    small = scale_mix(mix, 128)
    assert small.size_px == 128 and small.stroke.max_width == round(250 / 4)
    assert small.box.bbox_max_size == 75 and small.max_area == 0.5
    areas = hole_areas(MaskGenerator(small, seed=0).generate(40))
    assert 0.1 < areas.mean() < 0.4


def test_invalid_mixture() -> None:
    with pytest.raises(ConfigError, match="probabilities"):
        MaskGenerator(MaskMix(stroke_proba=0.0, box_proba=0.0))
