"""Flow helpers: DIS on a known shift, scattered sampling, mask shaping."""

from __future__ import annotations

import cv2
import numpy as np

from lama_video import flow as fl


def _noise(h: int, w: int) -> np.ndarray:
    img = np.random.default_rng(0).integers(0, 256, (h, w)).astype(np.float32)
    return cv2.normalize(cv2.GaussianBlur(img, (0, 0), 2.0), None, 0, 255, cv2.NORM_MINMAX).astype(
        np.uint8
    )


def test_estimate_gray_recovers_a_shift():
    big = _noise(100, 140)
    a, b = big[10:90, 10:130], big[10:90, 7:127]  # content moves 3 px right from a to b
    f = fl.estimate_gray(fl.FlowEstimator(preset="medium"), a, b)
    assert f.shape == (80, 120, 2) and f.dtype == np.float32
    inner = f[10:-10, 10:-10]
    assert abs(float(np.median(inner[..., 0])) - 3.0) < 0.2
    assert abs(float(np.median(inner[..., 1]))) < 0.2


def test_estimate_gray_takes_a_strip_with_one_short_side():
    # OpenCV's DIS on 120 x 8-12 px crashed the process, on 480 x 12 it raised (a 1024 x 64
    # clip's coarse flow); a short side is padded and the flow cropped back.
    big = _noise(160, 520)
    for h, w in [(8, 120), (12, 120), (12, 480), (16, 256), (120, 8), (5, 5)]:
        a, b = big[20 : 20 + h, 10 : 10 + w], big[20 : 20 + h, 7 : 7 + w]
        for preset in ("ultrafast", "fast", "medium"):
            f = fl.estimate_gray(fl.FlowEstimator(preset=preset), a, b)
            assert f.shape == (h, w, 2) and np.isfinite(f).all()
    a, b = big[20:36, 10:266], big[20:36, 7:263]  # 256 x 16: the shift is still found
    f = fl.estimate_gray(fl.FlowEstimator(preset="medium"), a, b)
    assert abs(float(np.median(f[4:-4, 20:-20, 0])) - 3.0) < 0.5


def test_sample_points_bilinear_border_and_many_points():
    img = np.arange(20, dtype=np.float32).reshape(4, 5)
    xs = np.array([0.5, 4.0, 10.0], np.float32)
    ys = np.array([0.0, 3.0, 0.0], np.float32)
    np.testing.assert_allclose(fl.sample_points(img, xs, ys, border_value=-1), [0.5, 19.0, -1.0])
    n = 50_000  # more points than cv2.remap accepts in one row
    rng = np.random.default_rng(1)
    px = rng.integers(0, 5, n).astype(np.float32)
    py = rng.integers(0, 4, n).astype(np.float32)
    out = fl.sample_points(img, px, py, nearest=True)
    np.testing.assert_array_equal(out, img[py.astype(int), px.astype(int)])
    rgb = np.zeros((4, 5, 3), np.uint8)
    assert fl.sample_points(rgb, px[:7], py[:7]).shape == (7, 3)


def test_dilate_and_shrink_mask_keep_every_hole_pixel_covered():
    m = np.zeros((20, 30), bool)
    m[5, 7] = True
    d = fl.dilate(m, 2)
    assert d.sum() > 9 and d[5, 5] and d[3, 7] and not d[5, 10]
    np.testing.assert_array_equal(fl.dilate(m, 0), m)
    small = fl.shrink_mask(m, (10, 7))
    assert small.shape == (7, 10) and small.any()
    # the hole pixel's own cell is covered
    assert small[int((5 + 0.5) * 7 / 20), int((7 + 0.5) * 10 / 30)]


def test_neighbour_mean_is_a_cross_average():
    img = np.zeros((5, 5), np.float32)
    img[2, 2] = 4.0
    out = fl.neighbour_mean(img)
    assert out[1, 2] == 1.0 and out[2, 1] == 1.0 and out[2, 2] == 0.0 and out[1, 1] == 0.0


def test_extend_crop_places_the_crop_and_replicates_its_edges():
    crop = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = fl.extend_crop(crop, 2, 1, 7, 8)
    assert out.shape == (7, 8)
    np.testing.assert_array_equal(out[2:5, 1:5], crop)
    np.testing.assert_array_equal(out[0, 1:5], crop[0])  # above: the top row
    np.testing.assert_array_equal(out[6, 1:5], crop[-1])  # below: the bottom row
    np.testing.assert_array_equal(out[2:5, 7], crop[:, -1])  # right: the last column
    assert out[0, 0] == crop[0, 0] and out[6, 7] == crop[-1, -1]
    flow = np.ones((3, 4, 2), np.float32)
    assert fl.extend_crop(flow, 0, 0, 3, 4) is flow  # nothing to extend
    assert fl.extend_crop(flow, 1, 1, 5, 6).shape == (5, 6, 2)


def test_estimate_gray_does_not_depend_on_earlier_calls():
    # OpenCV's DIS keeps buffers between calls; crops of changing size made the temporal engine's
    # result depend on call order (and Ray window parts differ from a one-process run).
    rng = np.random.default_rng(3)
    a = cv2.GaussianBlur(rng.integers(0, 256, (90, 130), dtype=np.uint8), (5, 5), 1.5)
    b = np.roll(a, 2, axis=1)
    c = cv2.GaussianBlur(rng.integers(0, 256, (61, 77), dtype=np.uint8), (5, 5), 1.5)
    est = fl.FlowEstimator(preset="ultrafast")
    first = fl.estimate_gray(est, a, b)
    fl.estimate_gray(est, c, np.roll(c, 5, axis=0))
    again = fl.estimate_gray(est, a, b)
    assert np.array_equal(first, again)


def test_sample_points_cubic_keeps_detail_at_half_pixel_offsets():
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.random((64, 64)).astype(np.float32), (0, 0), 0.8)
    gy, gx = np.mgrid[8:56, 8:56].astype(np.float32)
    xs, ys = gx.ravel(), gy.ravel()
    # Integer positions are exact with every kernel.
    exact = fl.sample_points(img, xs, ys, cubic=True)
    np.testing.assert_allclose(exact, img[8:56, 8:56].ravel(), atol=1e-5)
    # Half a pixel off, bilinear averages two neighbours and loses contrast; bicubic keeps more.
    lin = fl.sample_points(img, xs + 0.5, ys + 0.5).reshape(48, 48)
    cub = fl.sample_points(img, xs + 0.5, ys + 0.5, cubic=True).reshape(48, 48)

    def detail(a: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(a, cv2.CV_32F)).mean())

    ref = detail(img[8:56, 8:56])
    assert detail(cub) > 0.8 * ref  # 0.88
    assert detail(lin) < 0.7 * ref  # 0.61


def test_vector_length_is_numpys_norm_bit_for_bit():
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        v = (rng.standard_normal((37, 53, 2)) * 20).astype(dtype)
        v[0, 0, 0], v[1, 1, 1] = np.nan, np.inf
        got = fl.vector_length(v)
        assert got.dtype == dtype
        assert np.array_equal(got, np.linalg.norm(v, axis=-1), equal_nan=True)
        flat = v.reshape(-1, 2)
        assert np.array_equal(fl.vector_length(flat), np.linalg.norm(flat, axis=1), equal_nan=True)


def test_fb_error_on_a_box_equals_the_whole_frames():
    """Flows that are zero outside a box (computed on that crop): the error worked out inside
    the box alone is the whole frame's there, also where a point is carried out of the box (it
    reads the zero flow there) or out of the frame (inf); outside the box it is 0."""
    rng = np.random.default_rng(2)
    h, w, box = 60, 90, (10, 45, 20, 70)
    y0, y1, x0, x1 = box
    ab, ba = np.zeros((h, w, 2), np.float32), np.zeros((h, w, 2), np.float32)
    ab[y0:y1, x0:x1] = rng.normal(0, 6, (y1 - y0, x1 - x0, 2))
    ba[y0:y1, x0:x1] = -ab[y0:y1, x0:x1] + rng.normal(0, 0.5, (y1 - y0, x1 - x0, 2))
    ab[y0, x0] = (-40.0, -30.0)  # carried out of the frame
    full = fl.fb_error(ab, ba)
    assert np.isinf(full[y0, x0]) and (full[y0:y1, x0:x1] > 3).any()  # some leave the box
    boxed = fl.fb_error(ab, ba, box)
    assert np.array_equal(boxed[y0:y1, x0:x1], full[y0:y1, x0:x1])
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert not boxed[outside].any()
    # (The whole frame's error is inf on its last row and column, whose bilinear reads pass
    # the edge; 0 elsewhere outside the box.)
    assert not full[:-1, :-1][outside[:-1, :-1]].any()


def test_estimate_gray_starts_from_an_initial_flow():
    # A 25 px shift of a 120x160 crop: DIS from zero stops far short of it; started from a guess
    # 3 px off it lands on it.
    big = _noise(160, 240)
    a, b = big[20:140, 40:200], big[20:140, 15:175]  # content moves 25 px right from a to b
    est = fl.FlowEstimator(preset="medium")
    inner = np.s_[20:-20, 40:-40]
    plain = fl.estimate_gray(est, a, b)
    assert abs(float(np.median(plain[inner][..., 0])) - 25.0) > 5.0
    guess = np.zeros((*a.shape, 2), np.float32)
    guess[..., 0] = 22.0
    started = fl.estimate_gray(est, a, b, guess)
    assert abs(float(np.median(started[inner][..., 0])) - 25.0) < 0.2
    assert abs(float(np.median(started[inner][..., 1]))) < 0.2
    assert guess[..., 0].min() == 22.0  # the guess is not written into


def test_track_homography_follows_a_large_shift_and_declines_two_motions():
    big = _noise(200, 260)
    a, b = big[30:170, 30:230], big[8:148, 30:230]  # content moves 22 px down from a to b
    where = np.ones(a.shape, bool)
    where[50:90, 80:120] = False  # no corners in the "hole"
    fit = fl.track_homography(a, b, where)
    assert fit is not None
    hom, p0, p1 = fit
    moved = fl.homography_field(hom, (0, a.shape[0], 0, a.shape[1]))
    # Within the fit's 1 px RANSAC tolerance everywhere, a tenth of it in the middle.
    np.testing.assert_allclose(moved, np.broadcast_to([0, 22], moved.shape), atol=0.5)
    middle = moved[60:80, 90:110]
    np.testing.assert_allclose(middle, np.broadcast_to([0, 22], middle.shape), atol=0.1)
    assert len(p0) >= 20
    assert where[np.rint(p0[:, 1]).astype(int), np.rint(p0[:, 0]).astype(int)].all()
    np.testing.assert_allclose(p1 - p0, np.broadcast_to([0, 22], p0.shape), atol=1.0)
    # Three bands moving 6 px down, not at all and 6 px up: no motion holds half the tracks.
    three = big[24:164, 30:230].copy()
    three[:, 67:133] = big[30:170, 97:163]
    three[:, 133:] = big[36:176, 163:230]
    assert fl.track_homography(a, three, where) is None
    one_of_three = fl.track_homography(a, three, where, min_inlier_share=0.2)
    assert one_of_three is not None  # one band's motion, when a minority may do
    dy = float(np.median(one_of_three[2][:, 1] - one_of_three[1][:, 1]))
    assert min(abs(dy - m) for m in (6.0, 0.0, -6.0)) < 0.5
    # Nothing to track.
    flat = np.full_like(a, 128)
    assert fl.track_homography(flat, flat, where) is None


def test_corners_on_the_box_are_the_whole_frames():
    """The corner search on the box around where corners may be is the whole frame's search with
    that mask: the same corners in the same order, where the box lies inside the frame and where
    it meets the frame's edges."""
    img = _noise(240, 320)
    img[100:140, 150:200] = 255  # a strong feature outside some of the masks: not the maximum
    for y0, y1, x0, x1 in ((40, 120, 60, 200), (0, 90, 0, 130), (150, 240, 200, 320)):
        where = np.zeros(img.shape, bool)
        where[y0:y1, x0:x1] = True
        where[y0 + 20 : y0 + 40, x0 + 30 : x0 + 60] = False  # a hole in it
        whole = cv2.goodFeaturesToTrack(img, 600, 0.01, 4, mask=where.view(np.uint8) * 255)
        got = fl._corners(img, where)
        assert got is not None and len(got) > 50
        assert np.array_equal(got, whole)
    assert fl._corners(img, np.zeros(img.shape, bool)) is None


def test_homography_field_and_photometric_error():
    hom = np.array([[1.0, 0, 3.5], [0, 1, -2.0], [0, 0, 1]])
    field = fl.homography_field(hom, (10, 20, 30, 45))
    assert field.shape == (10, 15, 2) and field.dtype == np.float32
    np.testing.assert_allclose(field[..., 0], 3.5, atol=1e-5)
    np.testing.assert_allclose(field[..., 1], -2.0, atol=1e-5)
    big = _noise(80, 100)
    a, b = big[10:70, 10:90], big[10:70, 14:94]  # content moves 4 px left from a to b
    right = np.zeros((60, 80, 2), np.float32)
    right[..., 0] = -4.0
    err = fl.photometric_error(a, b, right)
    assert err.shape == a.shape and float(err[:, 8:].max()) < 1e-3  # exact where b has it
    assert float(err[:, 0].min()) > 50.0  # carried out of the image: no support
    wrong = fl.photometric_error(a, b, np.zeros_like(right))
    assert float(wrong[:, 8:].mean()) > 10.0


def test_map_points_applies_the_homography_with_its_division():
    hom = np.array([[1.1, 0.02, 5.0], [-0.01, 0.9, -3.0], [1e-4, 2e-4, 1.0]])
    xs = np.array([0, 10, 250], np.intp)
    ys = np.array([0, 40, 120], np.intp)
    got = fl.map_points(hom, xs, ys)
    den = hom[2, 0] * xs + hom[2, 1] * ys + hom[2, 2]
    want = np.stack(
        [
            (hom[0, 0] * xs + hom[0, 1] * ys + hom[0, 2]) / den,
            (hom[1, 0] * xs + hom[1, 1] * ys + hom[1, 2]) / den,
        ],
        axis=1,
    )
    assert got.shape == (3, 2) and got.dtype == np.float32
    assert np.allclose(got, want, atol=1e-3)
    field = fl.homography_field(hom, (0, 121, 0, 251))  # the same, as a displacement field
    assert np.allclose(field[ys, xs], want - np.stack([xs, ys], axis=1), atol=1e-3)
