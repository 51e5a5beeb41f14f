from __future__ import annotations

import numpy as np

from lama_video.composite import composite, seam_alpha
from lama_video.masks import dilate


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    orig = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    fill = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    core = np.zeros((40, 50), bool)
    core[10:25, 15:30] = True
    return orig, fill, core


def test_outside_hole_bit_identical_and_core_fully_filled():
    orig, fill, core = _scene()
    hole = dilate(core, 4)
    out = composite(orig, fill, hole, core, feather_px=2)
    assert np.array_equal(out[~hole], orig[~hole])
    assert np.array_equal(out[core], fill[core])
    ring = hole & ~core
    # the ring is a blend: between the two sources
    lo = np.minimum(orig[ring], fill[ring]).astype(int) - 1
    hi = np.maximum(orig[ring], fill[ring]).astype(int) + 1
    assert np.all((out[ring] >= lo) & (out[ring] <= hi))


def test_hard_seam_without_dilation_is_lamas_blend():
    orig, fill, core = _scene(1)
    out = composite(orig, fill, core, core, feather_px=3)
    expected = np.where(core[..., None], fill, orig)
    assert np.array_equal(out, expected)


def test_alpha_ramps_towards_outer_edge():
    core = np.zeros((30, 30), bool)
    core[10:20, 10:20] = True
    hole = dilate(core, 4)
    a = seam_alpha(hole, core, feather_px=2)
    assert a[~hole].max() == 0.0 and a[core].min() == 1.0
    row = a[15, :10]  # walking from outside towards the core along a row
    assert np.all(np.diff(row) >= 0)
    assert 0 < a[15, 6] < 1  # outermost hole pixel is partially blended


def _whole_frame_composite(orig, fill, hole, core, feather_px):
    """The definition, on the whole frame: what the box-limited composite must equal."""
    alpha = seam_alpha(hole, core & hole, feather_px)[..., None]
    blend = alpha * fill.astype(np.float32) + (1.0 - alpha) * orig.astype(np.float32)
    return np.where(hole[..., None], np.clip(np.rint(blend), 0, 255).astype(np.uint8), orig)


def test_box_limited_composite_equals_the_whole_frame_blend():
    # Holes of every kind: several blobs, touching each image edge and corner, a single pixel.
    rng = np.random.default_rng(7)
    for trial in range(40):
        h, w = rng.integers(8, 60, 2)
        orig = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        fill = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        core = np.zeros((h, w), bool)
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, h), rng.integers(0, w)
            core[max(0, y - rng.integers(0, 8)) : y + 1, max(0, x - rng.integers(0, 8)) : x + 1] = 1
        hole = dilate(core, int(rng.integers(0, 6)))
        feather = int(rng.integers(0, 4))
        out = composite(orig, fill, hole, core, feather_px=feather)
        assert np.array_equal(out, _whole_frame_composite(orig, fill, hole, core, feather)), trial


def test_a_16_bit_frame_keeps_its_depth_outside_the_hole_and_takes_the_fill_scaled():
    orig8, fill, core = _scene(3)
    rng = np.random.default_rng(4)
    orig = rng.integers(0, 65536, orig8.shape, dtype=np.uint16)  # a 10-bit source's values
    hole = dilate(core, 4)
    hard = composite(orig, fill, hole)
    assert hard.dtype == np.uint16
    assert np.array_equal(hard[~hole], orig[~hole])
    assert np.array_equal(hard[hole], fill[hole].astype(np.uint16) * 257)
    soft = composite(orig, fill, hole, core, feather_px=3)
    assert np.array_equal(soft[~hole], orig[~hole])
    assert np.array_equal(soft[core], fill[core].astype(np.uint16) * 257)
    ring = hole & ~core
    lo = np.minimum(orig[ring], fill[ring].astype(np.uint16) * 257)
    hi = np.maximum(orig[ring], fill[ring].astype(np.uint16) * 257)
    assert np.all((soft[ring] >= lo) & (soft[ring] <= hi))  # a blend of the two
