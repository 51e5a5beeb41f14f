"""Temporal engine: flow completion, propagation, hallucination, windows, memory, contracts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction

import cv2
import numpy as np
import pytest

import lama_video.flow_completion as fc
from lama_video import flow as fl
from lama_video import temporal
from lama_video.config import TemporalConfig
from lama_video.engines.exemplar import ExemplarEngine
from lama_video.flow_completion import harmonic_fill, homography_fill
from lama_video.temporal import (
    TemporalEngine,
    _coarse_start,
    _smooth_fill,
    _split_detail,
    _with_tracked_motion,
)
from lama_video.video import Frame


class TeleaStandIn:
    """Minimal image engine (OpenCV Telea) that counts its calls."""

    name = "telea"

    def __init__(self) -> None:
        self.calls = 0

    def inpaint(self, frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
        self.calls += 1
        out = frames.copy()
        for i in range(frames.shape[0]):
            if masks[i].any():
                f = cv2.inpaint(frames[i], masks[i].astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
                out[i] = np.where(masks[i][..., None], f, frames[i])
        return out


def _texture(h: int, w: int, seed: int = 0, blur: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), blur)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _panning_scene(n: int = 16, h: int = 96, w: int = 160, pan: float = 1.5, blur: float = 2.0):
    """Background panning left by ``pan`` px/frame under an occluder moving right 4 px/frame."""
    big = _texture(h + 20, w + int(pan * n) + 40, blur=blur)
    gts, items = [], []
    for t in range(n):
        m = np.float32([[1, 0, pan * t], [0, 1, 5]])
        gt = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        hole = np.zeros((h, w), bool)
        hole[30:70, 30 + 4 * t : 54 + 4 * t] = True
        rgb = gt.copy()
        rgb[hole] = (255, 0, 0)
        gts.append(gt)
        items.append((Frame(t, None, Fraction(1, 25), rgb), hole))
    return gts, items


def _cfg(**kw) -> TemporalConfig:
    return TemporalConfig(**kw)


# ---------------------------------------------------------------- flow completion


def test_harmonic_fill_recovers_smooth_field_and_ignores_hole_contents():
    h, w = 120, 200
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.stack([1.0 + 0.02 * xs - 0.01 * ys, -2.0 + 0.015 * ys + 0.005 * xs], axis=-1)
    hole = (xs - 90) ** 2 + (ys - 60) ** 2 < 40**2
    a, b = field.copy(), field.copy()
    a[hole] = 1e3
    b[hole] = np.random.default_rng(1).normal(0, 50, (hole.sum(), 2))
    fa, fb = harmonic_fill(a, hole), harmonic_fill(b, hole)
    # A linear field is harmonic, so it is recovered (coarse-to-fine solve: small residual).
    assert np.abs(fa - field)[hole].max() < 0.05
    np.testing.assert_array_equal(fa, fb)  # garbage inside the hole has no influence
    np.testing.assert_array_equal(fa[~hole], field[~hole])


def test_harmonic_fill_small_hole_is_exact_laplace_solution():
    h, w = 40, 50
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    field = (0.3 * xs + 0.7 * ys)[..., None]
    hole = np.zeros((h, w), bool)
    hole[10:25, 5:30] = True
    out = harmonic_fill(np.where(hole[..., None], 0.0, field).astype(np.float32), hole)
    assert np.abs(out - field).max() < 1e-3


def test_harmonic_fill_coarse_levels_approximates_the_full_solve():
    h, w = 160, 220
    img = cv2.GaussianBlur(
        np.random.default_rng(2).random((h, w, 3)).astype(np.float32) * 255, (0, 0), 6
    )
    ys, xs = np.mgrid[0:h, 0:w]
    hole = ((xs - 110) / 80.0) ** 2 + ((ys - 80) / 60.0) ** 2 < 1
    exact = harmonic_fill(img, hole, max_direct_unknowns=10**6)
    for levels in (0, 1):
        out = harmonic_fill(img, hole, coarse_levels=levels)
        np.testing.assert_array_equal(out[~hole], img[~hole])
        err = np.abs(out - exact)[hole]
        # a few grey levels at most, well under one on average (the field spans ~10 levels)
        assert err.max() < 2.0 and err.mean() < 0.5, (levels, err.max(), err.mean())


def _homography_flow(hom: np.ndarray, h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    den = hom[2, 0] * xs + hom[2, 1] * ys + hom[2, 2]
    mx = (hom[0, 0] * xs + hom[0, 1] * ys + hom[0, 2]) / den - xs
    my = (hom[1, 0] * xs + hom[1, 1] * ys + hom[1, 2]) / den - ys
    return np.stack([mx, my], axis=-1).astype(np.float32)


def _pair_flows(hom: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h, w, 4): the flow of ``hom`` and of its inverse (a forward/backward pair)."""
    inv = np.linalg.inv(hom)
    return np.concatenate([_homography_flow(hom, h, w), _homography_flow(inv, h, w)], axis=2)


def test_homography_fill_carries_the_camera_motion_past_a_contaminated_border():
    # Two fields (forward and backward) of a zooming, panning, keystoned camera; next to the hole
    # the flow carries the object's motion (as DIS's patches smear it), and a tenth of the ring is
    # noise. The camera motion is recovered inside; a harmonic fill spreads the smear instead.
    h, w = 120, 200
    ys, xs = np.mgrid[0:h, 0:w]
    fwd_h = np.array([[1.02, 0.01, 2.5], [-0.01, 1.02, -1.0], [4e-5, 2e-5, 1.0]])
    fields = _pair_flows(fwd_h, h, w)
    hole = ((xs - 90) / 35.0) ** 2 + ((ys - 60) / 28.0) ** 2 < 1
    dist = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
    seen = fields.copy()
    seen[(dist > 0) & (dist < 5)] += (6.0, -3.0, -6.0, 3.0)  # the object's motion, smeared
    rng = np.random.default_rng(3)
    noisy = (dist > 0) & (dist < 16) & (rng.random((h, w)) < 0.1)
    seen[noisy] += rng.normal(0, 4, (int(noisy.sum()), 4)).astype(np.float32)
    seen[hole] = 1e3  # whatever the hole holds is ignored
    out = homography_fill(seen, hole)
    np.testing.assert_array_equal(out[~hole], seen[~hole])
    err = np.abs(out - fields)[hole]
    assert err.max() < 0.05, err.max()
    harmonic = np.abs(harmonic_fill(seen, hole) - fields)[hole]
    assert harmonic.mean() > 2.0, harmonic.mean()


def test_paired_homography_fill_recovers_fast_motion_from_where_the_two_fields_agree():
    # A fast pan with a zoom (12 px per frame): DIS's ring flow is wrong on 3 of 4 blocks of each
    # field, independently, so neither field alone is one motion (each falls back to a harmonic
    # fill; two fills that disagree stop every propagation chain). Where the two fields agree
    # they are right, and the joint fit recovers the motion in both, H and its inverse.
    h, w = 120, 200
    ys, xs = np.mgrid[0:h, 0:w]
    fwd_h = np.array([[1.03, 0.0, 12.0], [0.0, 1.03, -4.0], [0.0, 0.0, 1.0]])
    fields = _pair_flows(fwd_h, h, w)
    hole = ((xs - 100) / 30.0) ** 2 + ((ys - 60) / 24.0) ** 2 < 1
    rng = np.random.default_rng(5)
    seen = fields.copy()
    for c in (0, 2):  # each field wrong on its own random 8x8 blocks
        wrong = np.kron(rng.random((h // 8, w // 8)) < 0.75, np.ones((8, 8), bool))
        seen[wrong, c : c + 2] = rng.uniform(-20, 20, (int(wrong.sum()), 2))
    seen[hole] = 1e3  # whatever the hole holds is ignored
    np.testing.assert_array_equal(homography_fill(seen, hole), harmonic_fill(seen, hole))
    out = homography_fill(seen, hole, paired=True)
    np.testing.assert_array_equal(out[~hole], seen[~hole])
    err = np.abs(out - fields)[hole]
    assert err.max() < 0.05, err.max()


def test_paired_homography_fill_gives_each_side_of_a_hole_its_own_motion(monkeypatch):
    # An object the camera follows (still, right of x = 100) with the scene racing past behind
    # it (8 px a frame, left), the hole straddling both: each side of the hole gets its own
    # motion, in both fields. One homography gives the whole hole one of them.
    h, w = 120, 200
    ys, xs = np.mgrid[0:h, 0:w]
    fields = np.zeros((h, w, 4), np.float32)
    fields[xs < 100, 0] = 8.0  # forward, in frame a
    fields[xs < 108, 2] = -8.0  # backward, in frame b (the scene has moved on by 8 px)
    hole = ((xs - 100) / 30.0) ** 2 + ((ys - 60) / 24.0) ** 2 < 1
    seen = fields.copy()
    seen[hole] = 1e3  # whatever the hole holds is ignored
    out = homography_fill(seen, hole, paired=True)
    np.testing.assert_array_equal(out[~hole], seen[~hole])
    for c, edge in ((0, 100), (2, 108)):
        away = hole & (np.abs(xs - edge) > 6)
        err = np.abs(out[..., c : c + 2] - fields[..., c : c + 2])[away]
        assert err.max() < 0.05, (c, err.max())
    # The round trip through both completed fields comes back on either side.
    fwd_x = out[..., 0]
    for side in (hole & (xs < 90), hole & (xs > 110)):
        y, x = np.nonzero(side)
        back = out[y, np.clip(np.rint(x + fwd_x[y, x]).astype(int), 0, w - 1), 2]
        assert np.abs(fwd_x[y, x] + back).max() < 0.05
    # With the second motion switched off, one motion for the whole hole: one side is 8 px off.
    monkeypatch.setattr(fc, "_SECOND_SHARE", 2.0)
    one = homography_fill(seen, hole, paired=True)
    worst = max(
        np.abs(one[..., 0] - fields[..., 0])[hole & (xs < 90)].mean(),
        np.abs(one[..., 0] - fields[..., 0])[hole & (xs > 110)].mean(),
    )
    assert worst > 7.0, worst


def test_two_motions_are_not_fitted_to_one():
    # One camera motion with noise on a tenth of the ring: no second motion is made up.
    h, w = 120, 200
    ys, xs = np.mgrid[0:h, 0:w]
    fwd_h = np.array([[1.02, 0.01, 2.5], [-0.01, 1.02, -1.0], [4e-5, 2e-5, 1.0]])
    flow = _pair_flows(fwd_h, h, w)
    rng = np.random.default_rng(6)
    noisy = rng.random((h, w)) < 0.1
    flow[noisy] += rng.normal(0, 4, (int(noisy.sum()), 4)).astype(np.float32)
    hole = ((xs - 90) / 35.0) ** 2 + ((ys - 60) / 28.0) ** 2 < 1
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((33, 33), np.uint8)).astype(bool) & ~hole
    ry, rx = np.nonzero(ring)
    hy, hx = np.nonzero(hole)
    assert fc._paired_two_motions(*fc._ring_pairs(flow, rx, ry), hx, hy, 1.0) is None


def test_homography_fill_falls_back_to_harmonic_without_one_camera_motion():
    h, w = 80, 120
    # No single motion explains the ring: any homography has about 2 % of it within 1 px.
    field = np.random.default_rng(4).uniform(-8, 8, (h, w, 2)).astype(np.float32)
    hole = np.zeros((h, w), bool)
    hole[25:55, 40:80] = True
    np.testing.assert_array_equal(homography_fill(field, hole), harmonic_fill(field, hole))
    with pytest.raises(ValueError, match="2k"):
        homography_fill(field[..., :1], hole)


def test_camera_motion_fill_recovers_perspective_background_better_than_harmonic():
    # A textured plane seen by a zooming, panning camera with a keystone, under a wide occluder
    # moving 6 px a frame: propagation reads the right pixels only if the hole's flow is the
    # camera's. Measured: mean error 1.59 (harmonic 2.90), worst frame 3.28 (harmonic 5.57).
    # Before DIS saw the two frames' union hole filled alike (each frame's own hole filled, so the
    # smooth patch moved with the occluder): 1.9 (harmonic 5.1), worst 4.1 (harmonic 10.3).
    n, h, w = 16, 120, 200
    big = _texture(2 * h, 2 * w, blur=1.5)
    gts, items = [], []
    for t in range(n):
        s = 1 + 0.01 * t
        hom = np.array([[s, 0.0, 1.5 * t + w / 2], [0, s, h / 2], [0, 2e-4 * t, 1]])
        gt = cv2.warpPerspective(big, hom, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        hole = np.zeros((h, w), bool)
        hole[30:90, 20 + 6 * t : 60 + 6 * t] = True
        rgb = gt.copy()
        rgb[hole] = (255, 0, 0)
        gts.append(gt)
        items.append((Frame(t, None, Fraction(1, 25), rgb), hole))
    errs = {}
    for fill in ("homography", "harmonic"):
        eng = TemporalEngine(TeleaStandIn(), _cfg(smoothing_strength=0.0, flow_fill=fill))
        res = list(eng.process(iter(items)))
        errs[fill] = [
            float(np.abs(out[hole].astype(np.float32) - gt[hole]).mean())
            for (_frame, hole, out), gt in zip(res, gts, strict=True)
        ]
    assert np.mean(errs["homography"]) < 2.0 and max(errs["homography"]) < 4.0, errs
    assert np.mean(errs["homography"]) < 0.65 * np.mean(errs["harmonic"]), errs
    # The flow next to the hole no longer carries the occluder's motion, so even a harmonic
    # completion of it stays close to the camera's.
    assert np.mean(errs["harmonic"]) < 4.0 and max(errs["harmonic"]) < 8.0, errs


def _pan_pair(dy: int):
    """Two working-size grays of a scene panning ``dy`` px down, a still hole in the middle,
    their box crops with the hole filled smoothly (as the engine's pair flows see them), DIS
    on those, the grown hole and the box."""
    big = np.ascontiguousarray(_texture(300, 432)[..., 0])
    a, b = big[30:270], big[30 - dy : 270 - dy]
    hole = np.zeros(a.shape, bool)
    cv2.circle(hole.view(np.uint8), (216, 120), 30, 1, -1)
    grown = fl.dilate(hole, 8)
    box = fl.bbox(grown, 48)
    assert box is not None
    y0, y1, x0, x1 = box
    crops = (
        _smooth_fill(a[y0:y1, x0:x1], hole[y0:y1, x0:x1]),
        _smooth_fill(b[y0:y1, x0:x1], hole[y0:y1, x0:x1]),
    )
    est = fl.FlowEstimator(preset="medium")
    flows = (fl.estimate_gray(est, *crops), fl.estimate_gray(est, crops[1], crops[0]))
    ring = (fl.dilate(grown, 16) & ~grown)[y0:y1, x0:x1]
    return est, (a, b), crops, flows, grown, box, ring


def test_tracked_corners_correct_dis_that_stopped_short_of_a_fast_pan():
    # A pan of 24 px a frame around a still, smoothly filled hole: DIS from zero stops near zero
    # motion around it, and the camera motion fitted on that ring would be 24 px off. The
    # corrected flows follow the pan on the ring, both ways.
    est, grays, crops, flows, grown, box, ring = _pan_pair(24)
    assert abs(float(np.median(flows[0][ring][:, 1])) - 24.0) > 10.0  # DIS alone is far off
    ab, ba = _with_tracked_motion(est, grays, crops, flows, grown, box)
    assert ab.dtype == np.float32 and ab.shape == flows[0].shape
    assert abs(float(np.median(ab[ring][:, 1])) - 24.0) < 0.3
    assert abs(float(np.median(ba[ring][:, 1])) + 24.0) < 0.3
    assert float(np.mean(np.abs(ab[ring][:, 1] - 24.0) < 1.0)) > 0.8
    done = homography_fill(
        np.concatenate([fl.extend_crop(f, box[0], box[2], *grown.shape) for f in (ab, ba)], 2),
        grown,
        paired=True,
    )
    hole_motion = np.median(done[grown], axis=0)
    np.testing.assert_allclose(hole_motion, [0, 24, 0, -24], atol=0.3)


def test_dis_on_a_box_follows_a_fast_pan_from_the_shrunk_frames_motion():
    # A pan of 28 px a frame round a still, smoothly filled hole: on the box (one pyramid level
    # fewer than the frame) DIS from zero stops far short of it on the ring; started from DIS on
    # the whole frames shrunk 4x, it follows the pan on the ring both ways, and where DIS alone
    # was right (a slow pan) the start changes nothing that matters.
    for dy, dis_alone_off in ((28, True), (4, False)):
        est, grays, crops, flows, grown, box, ring = _pan_pair(dy)
        hole = ~fl.dilate(~grown, 8)  # the hole (grown shrunk back)
        off = abs(float(np.median(flows[0][ring][:, 1])) - dy)
        assert (off > 5.0) == dis_alone_off, off
        start = _coarse_start(est, grays[0], grays[1], hole, box)
        assert all(s.shape == flows[0].shape and s.dtype == np.float32 for s in start)
        ab = fl.estimate_gray(est, crops[0], crops[1], start[0])
        ba = fl.estimate_gray(est, crops[1], crops[0], start[1])
        assert abs(float(np.median(ab[ring][:, 1])) - dy) < 0.3
        assert abs(float(np.median(ba[ring][:, 1])) + dy) < 0.3
        assert float(np.mean(np.abs(ab[ring][:, 1] - dy) < 1.0)) > 0.8


def test_tracked_corners_leave_dis_alone_where_it_follows_them(monkeypatch):
    from lama_video import temporal

    est, grays, crops, flows, grown, box, _ = _pan_pair(6)
    asked: list[int] = []
    track = fl.track_homography

    def counted(*args, **kwargs):
        asked.append(kwargs.get("max_corners", fl._TRACK_CORNERS))
        return track(*args, **kwargs)

    monkeypatch.setattr(fl, "track_homography", counted)
    ab, ba = _with_tracked_motion(est, grays, crops, flows, grown, box)
    assert ab is flows[0] and ba is flows[1]
    # The strongest corners confirmed DIS: the full set was never tracked.
    assert asked == [temporal._QUICK_CORNERS]
    asked.clear()
    est, grays, crops, flows, grown, box, _ = _pan_pair(24)
    _with_tracked_motion(est, grays, crops, flows, grown, box)
    assert asked == [temporal._QUICK_CORNERS, fl._TRACK_CORNERS]  # DIS was off: all of them


def test_the_strongest_corners_are_the_same_whatever_the_limit():
    _, grays, _, _, grown, box, _ = _pan_pair(6)
    where = np.zeros_like(grown)
    y0, y1, x0, x1 = box
    where[y0:y1, x0:x1] = True
    where &= ~grown
    every = fl._corners(grays[0], where)
    few = fl._corners(grays[0], where, 150)
    assert every is not None and few is not None
    assert len(every) > 150 and len(few) == 150
    assert np.array_equal(few, every[:150])


# ---------------------------------------------------------------- propagation


def test_panning_background_is_recovered_under_moving_occluder():
    gts, items = _panning_scene()
    eng = TemporalEngine(TeleaStandIn(), _cfg(smoothing_strength=0.0))
    res = list(eng.process(iter(items)))
    errs = []
    for (_frame, hole, out), gt in zip(res, gts, strict=True):
        errs.append(np.abs(out[hole].astype(np.float32) - gt[hole]).mean())
    # Every hole pixel is visible in some other frame: propagation recovers it almost exactly.
    assert np.mean(errs) < 3.0, errs
    assert max(errs) < 4.0, errs


def test_flows_on_worker_threads_give_the_serial_result(monkeypatch: pytest.MonkeyPatch):
    # The frame pairs' flows, each frame's finishing (seam, confidence) and its smoothing run on
    # worker threads; each item depends on itself alone, so the output must be bit-identical to
    # one thread's, whatever order they finish in.
    import lama_video.temporal as temporal

    _, items = _panning_scene(n=12)
    runs = []
    for threads in (1, 3):
        monkeypatch.setattr(temporal, "_FLOW_THREADS", threads)
        monkeypatch.setattr(temporal, "_POOL", None)
        runs.append(list(TemporalEngine(TeleaStandIn(), _cfg()).process(iter(items))))
    assert temporal._POOL is not None and temporal._POOL._max_workers == 3  # really threaded
    temporal._POOL.shutdown()
    for (_, _, serial), (_, _, threaded) in zip(*runs, strict=True):
        assert np.array_equal(serial, threaded)


def test_finishing_beside_the_pass_stays_bounded_and_stops_on_an_error(
    monkeypatch: pytest.MonkeyPatch,
):
    # Frames are finished on the worker threads while the propagation pass (a generator) goes
    # on; it may run only a few frames ahead of them, and an error (Ctrl-C) in one stops it.
    import time

    import lama_video.temporal as temporal

    monkeypatch.setattr(temporal, "_FLOW_THREADS", 2)
    monkeypatch.setattr(temporal, "_POOL", None)
    produced: list[int] = []
    finished: list[int] = []

    def items() -> Iterator[tuple[int, None]]:
        for i in range(50):
            produced.append(i)
            yield i, None

    def finish(i: int, _: None) -> None:
        if i == 0:
            time.sleep(0.3)  # the first frame is slow: the pass must wait for it, not run on
            raise KeyboardInterrupt
        finished.append(i)

    with pytest.raises(KeyboardInterrupt):
        temporal._overlap_threads(finish, items())
    temporal._POOL.shutdown(wait=True)
    assert len(produced) == temporal._OVERLAP_AHEAD + 1  # then it waited for frame 0
    assert set(finished) <= set(range(1, temporal._OVERLAP_AHEAD + 1))

    # And without an error every item is finished once.
    monkeypatch.setattr(temporal, "_POOL", None)
    done: list[int] = []
    temporal._overlap_threads(lambda i, _: done.append(i), ((i, None) for i in range(20)))
    temporal._POOL.shutdown(wait=True)
    assert sorted(done) == list(range(20))


def test_an_error_in_a_worker_cancels_the_queued_work(monkeypatch: pytest.MonkeyPatch):
    import threading

    import lama_video.temporal as temporal

    monkeypatch.setattr(temporal, "_FLOW_THREADS", 2)
    monkeypatch.setattr(temporal, "_POOL", None)
    started: list[int] = []
    gate = threading.Event()

    def work(i: int) -> int:
        started.append(i)
        if i == 0:
            raise KeyboardInterrupt  # what Ctrl-C raises
        gate.wait(5)
        return i

    with pytest.raises(KeyboardInterrupt):
        temporal._map_threads(work, list(range(50)))
    gate.set()
    temporal._POOL.shutdown(wait=True)
    assert len(started) <= 3  # the first two and at most one more: the rest was cancelled


def _laplacian_ratio(out: np.ndarray, gt: np.ndarray, sel: np.ndarray) -> float:
    """Mean |Laplacian| of ``out`` over ``sel`` over the same on ``gt`` (the texture ratio)."""

    def lap(img: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))

    return float(lap(out)[sel].mean() / lap(gt)[sel].mean())


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_propagated_fine_texture_stays_sharp(smoothing):
    # Fine texture panning by 1.5 px/frame: every copy lands at a half-pixel offset, where a
    # bilinear read averages neighbours (texture ratio 0.77 without smoothing, 0.73 with; hole
    # error 6.1). One bicubic read from the source frame keeps it (0.88 / 0.80; error 4.8).
    gts, items = _panning_scene(pan=1.5, blur=0.8)
    res = list(TemporalEngine(TeleaStandIn(), _cfg(smoothing_strength=smoothing)).process(items))
    ratios, errs = [], []
    for (_f, hole, out), gt in zip(res, gts, strict=True):
        ratios.append(_laplacian_ratio(out, gt, hole))
        errs.append(np.abs(out[hole].astype(np.float32) - gt[hole]).mean())
    assert np.mean(ratios) >= (0.84 if smoothing == 0 else 0.77), ratios
    assert np.mean(errs) < 5.4, errs


def test_smoothing_averages_the_coarse_change_and_keeps_the_fine_detail():
    # Fine texture panning by 1.5 px/frame: the neighbours smoothing averages are not aligned to
    # the pixel, so averaging all of their detail blurs it (texture ratio 0.85); averaging the
    # coarse part in full and 15 % of the detail keeps it (0.90) with a smaller hole error.
    gts, items = _panning_scene(pan=1.5, blur=0.8)
    scores = {}
    for detail in (1.0, 0.15):
        res = list(TemporalEngine(TeleaStandIn(), _cfg(smoothing_detail=detail)).process(items))
        ratio = np.mean([_laplacian_ratio(o, g, h) for (_f, h, o), g in zip(res, gts, strict=True)])
        err = np.mean(
            [
                np.abs(o[h].astype(np.float32) - g[h]).mean()
                for (_f, h, o), g in zip(res, gts, strict=True)
            ]
        )
        scores[detail] = (ratio, err)
    assert scores[0.15][0] >= 0.88 and scores[0.15][0] >= scores[1.0][0] + 0.03, scores
    assert scores[0.15][1] <= scores[1.0][1], scores


def test_split_detail_separates_a_ramp_from_a_checkerboard():
    ys, xs = np.nonzero(np.ones((40, 60), bool))
    ramp = (xs * 0.5).astype(np.float32)
    checker = np.where((ys + xs) % 2 == 0, 8.0, -8.0).astype(np.float32)
    change = np.repeat((ramp + checker)[:, None], 3, axis=1)
    inner = (ys > 5) & (ys < 34) & (xs > 5) & (xs < 54)  # away from the box's edge
    for detail in (0.0, 0.5):
        out = _split_detail(change, ys, xs, detail)
        fine = out[:, 0] - ramp
        np.testing.assert_allclose(fine[inner], detail * checker[inner], atol=1.5)
    assert _split_detail(change, ys, xs, 1.0) is change


def test_outside_pixels_bit_identical_and_order_kept():
    _, items = _panning_scene(n=10)
    res = list(
        TemporalEngine(TeleaStandIn(), _cfg(window_frames=6, overlap_frames=2)).process(iter(items))
    )
    assert [f.index for f, _, _ in res] == list(range(10))
    for (frame, hole, out), (f0, h0) in zip(res, items, strict=True):
        assert frame is f0 and hole is h0
        assert out.dtype == np.uint8 and out.shape == frame.rgb.shape
        np.testing.assert_array_equal(out[~hole], frame.rgb[~hole])


def test_empty_holes_pass_through_without_engine_calls():
    rgb = _texture(48, 64)
    items = [(Frame(i, None, Fraction(1, 25), rgb), np.zeros((48, 64), bool)) for i in range(7)]
    engine = TeleaStandIn()
    done: list[int] = []
    res = list(
        TemporalEngine(engine, _cfg(window_frames=4, overlap_frames=1)).process(
            iter(items), progress=done.append
        )
    )
    assert len(res) == 7 and sum(done) == 7
    assert all(out is frame.rgb for frame, _, out in res)
    assert engine.calls == 0


def test_progress_moves_while_a_window_is_worked_on_and_ends_at_the_frames_yielded():
    # A bar that counts yielded frames only sits at 0 through the first window (seconds on real
    # clips) and then guesses minutes: the stages report their share as they run.
    _, items = _panning_scene(n=20)
    log: list[tuple[int, int]] = []  # (frames reported, frames yielded when reported)
    yielded = 0

    def progress(n: int) -> None:
        log.append((n, yielded))

    eng = TemporalEngine(TeleaStandIn(), _cfg(window_frames=12, overlap_frames=4))
    for _ in eng.process(iter(items), progress=progress):
        yielded += 1
        done = sum(n for n, _ in log)
        assert done >= yielded, (done, yielded)  # never behind the frames out ...
    assert sum(n for n, _ in log) == 20 and all(n > 0 for n, _ in log)
    # ... and never ahead of the window being worked on: the first window yields 8 frames.
    before_first = [n for n, y in log if y == 0]
    assert len(before_first) >= 3, log  # several steps before any frame is out
    assert 0.8 * 8 - 1 <= sum(before_first) <= 8, log
    running = 0
    for n, y in log:
        running += n
        assert running <= (8 if y < 8 else 20), log


def test_frames_are_handed_out_as_their_smoothing_is_done():
    # A window's first frames go to the encoder while the later ones are still smoothed (the
    # last window used to hand out nothing until all were: the encoder then worked alone), and
    # they are the same frames, bit for bit, as when the window is filled first.
    _, items = _panning_scene(n=12)
    events: list[tuple[str, int]] = []
    eng = TemporalEngine(TeleaStandIn(), _cfg(window_frames=8, overlap_frames=2))
    eng.stage_hook = lambda stage, index, img, hole: (
        events.append((stage, index)) if stage == "smoothed" else None
    )
    out = []
    for frame, _, rgb in eng.process(iter(items)):
        events.append(("out", frame.index))
        out.append(rgb)
    smoothed = [i for s, i in events if s == "smoothed"]
    assert sorted(smoothed) == sorted([*range(8), *range(6, 12)])  # each window's frames once
    first_out = events.index(("out", 0))
    assert first_out < events.index(("smoothed", 7)), events  # out before the window is done
    # The second window's first frames (the overlap) wait for nothing but their own smoothing.
    assert events.index(("out", 6)) < events.index(("smoothed", 11)), events
    # The same frames as a window filled in full before anything is handed out.
    eng2 = TemporalEngine(TeleaStandIn(), _cfg(window_frames=8, overlap_frames=2))
    whole = []
    for start, stop in [(0, 8), (6, 12)]:
        work = eng2._window(items[start:stop], start, {}, {}, None, 0)
        with pytest.raises(StopIteration) as done:
            next(work)
        whole.append(done.value.value)
    for j in range(6):
        assert np.array_equal(out[j], whole[0][j].image())
    for j in range(6, 12):  # the overlap's cross-fade, as the engine does it
        a = whole[1][j - 6].image()
        if j < 8:
            hole = items[j][1]
            w = (j - 6 + 1) / 3
            mix = (1 - w) * whole[0][j].image()[hole].astype(np.float32) + w * a[hole]
            a[hole] = np.clip(mix + 0.5, 0, 255).astype(np.uint8)
        assert np.array_equal(out[j], a), j


def test_progress_callback_can_stop_a_window_midway():
    # The UI cancels a job by raising from its progress callback (and Ctrl-C lands anywhere):
    # raised while the first window is worked on, it stops the engine before any frame is out.
    _, items = _panning_scene(n=12)
    calls: list[int] = []

    def progress(n: int) -> None:
        calls.append(n)
        raise KeyboardInterrupt

    out = []
    with pytest.raises(KeyboardInterrupt):
        for item in TemporalEngine(TeleaStandIn(), _cfg()).process(iter(items), progress=progress):
            out.append(item)
    assert out == [] and len(calls) == 1


@pytest.mark.parametrize("mode", ["filled", "completed"])
def test_smoothing_follows_the_fills_own_motion_inside_holes_then_restores_the_flows(mode: str):
    # Inside a hole the completed flow is a guess; once the window is filled, smoothing follows
    # DIS on the filled frames there (the fills hold the scene's content, so they show its
    # motion), and the completed flows are put back for the next window's propagation.
    import lama_video.temporal as temporal

    gts, items = _panning_scene(n=4, pan=2.0)
    h, w = gts[0].shape[:2]
    eng = TemporalEngine(TeleaStandIn(), _cfg(smoothing_flow=mode))
    geo = temporal._Geometry(w, h, w, h)
    data: list = [eng._frame_data(f.rgb, hole, (w, h)) for f, hole in items]
    filled = []
    for (frame, hole), gt in zip(items, gts, strict=True):
        canvas = temporal._Canvas(frame.rgb, hole)
        ys, xs = np.nonzero(hole)
        canvas.put(ys, xs, gt[ys, xs])  # a perfect fill
        filled.append(canvas)
    # A wrong completion (no motion) everywhere; the true motion is -2 px/frame in x.
    fwd: list = [np.zeros((h, w, 2), np.float32) for _ in range(3)]
    bwd: list = [np.zeros((h, w, 2), np.float32) for _ in range(3)]
    with eng._filled_flows(filled, data, fwd, bwd, geo):
        for t in range(3):
            in_a, in_b = items[t][1], items[t + 1][1]
            if mode == "completed":
                assert not fwd[t].any() and not bwd[t].any()
                continue
            assert abs(np.median(fwd[t][in_a][:, 0]) + 2.0) < 0.3, np.median(fwd[t][in_a], 0)
            assert abs(np.median(fwd[t][in_a][:, 1])) < 0.3
            assert abs(np.median(bwd[t][in_b][:, 0]) - 2.0) < 0.3, np.median(bwd[t][in_b], 0)
            # Only the grown union of the pair's holes changes (the far corner stays).
            assert not fwd[t][:10, -10:].any() and not bwd[t][:10, -10:].any()
    for t in range(3):  # restored exactly
        assert not fwd[t].any() and not bwd[t].any()


def test_smoothing_flows_in_a_fast_pan_start_from_the_completed_flows():
    # A 28 px-a-frame pan: DIS on the filled boxes from zero would stop short of it (a box has a
    # pyramid level fewer than the frame); started from the completed flows (here the pan
    # itself) it follows the pan inside the holes.
    h, w, n, pan = 240, 432, 3, 28
    big = _texture(h, w + pan * n + 8, seed=7)
    eng = TemporalEngine(TeleaStandIn(), _cfg())
    geo = temporal._Geometry(w, h, w, h)
    hole = np.zeros((h, w), bool)
    cv2.circle(hole.view(np.uint8), (w // 2, h // 2), 30, 1, -1)
    data, filled = [], []
    for t in range(n):
        gt = np.ascontiguousarray(big[:, pan * t : pan * t + w])  # the scene moves left
        data.append(eng._frame_data(gt, hole, (w, h)))
        canvas = temporal._Canvas(gt, hole)
        ys, xs = np.nonzero(hole)
        canvas.put(ys, xs, gt[ys, xs])  # a perfect fill
        filled.append(canvas)
    fwd: list = [np.full((h, w, 2), (-pan, 0), np.float32) for _ in range(n - 1)]
    bwd: list = [np.full((h, w, 2), (pan, 0), np.float32) for _ in range(n - 1)]
    with eng._filled_flows(filled, data, fwd, bwd, geo):
        for t in range(n - 1):
            assert abs(np.median(fwd[t][hole][:, 0]) + pan) < 0.3, np.median(fwd[t][hole], 0)
            assert abs(np.median(bwd[t][hole][:, 0]) - pan) < 0.3, np.median(bwd[t][hole], 0)
            assert float(np.mean(np.abs(fwd[t][hole][:, 0] + pan) < 1.0)) > 0.9


# ---------------------------------------------------------------- hallucination


def _still_shot(
    h: int, w: int, n: int, box: tuple[slice, slice], seed: int, blur: float = 2.0
) -> tuple[np.ndarray, list]:
    """A still camera on a texture (noise of +-3 levels, new in every frame) and a still hole."""
    rng = np.random.default_rng(seed)
    base = _texture(h, w, seed=seed + 2, blur=blur)
    hole = np.zeros((h, w), bool)
    hole[box] = True
    items = []
    for t in range(n):
        noisy = np.clip(base.astype(np.int16) + rng.integers(-3, 4, base.shape), 0, 255)
        items.append((Frame(t, None, Fraction(1, 25), noisy.astype(np.uint8)), hole))
    return hole, items


def test_never_visible_region_gets_the_same_fill_on_a_static_camera():
    hole, items = _still_shot(64, 96, 12, (slice(20, 44), slice(30, 62)), seed=3)
    engine = TeleaStandIn()
    res = list(TemporalEngine(engine, _cfg(keyframe_interval=5)).process(iter(items)))
    assert engine.calls <= 2  # one keyframe batch (+ a possible leftover batch)
    fills = np.stack([out[hole].astype(np.float32) for _, _, out in res])
    # Consecutive fills barely differ (the keyframes' fill is carried along, not re-invented).
    step = np.abs(np.diff(fills, axis=0)).mean(axis=(1, 2))
    assert step.max() < 1.5, step
    # Per-frame Telea on the same noisy frames changes more from frame to frame.
    per = np.stack(
        [engine.inpaint(f.rgb[None], hole[None])[0][hole].astype(np.float32) for f, _ in items]
    )
    assert step.mean() < 0.5 * np.abs(np.diff(per, axis=0)).mean()


def test_an_invention_stays_still_on_a_still_shot():
    """The exemplar engine invents a different texture from each frame's noise: keyframes
    invented each on their own made the fill of a tripod shot morph from one to the next (a
    drift of 9 levels over 40 frames of a real frame, 31 on a random texture). Later keyframes
    of a window now pull the first one's invention along the flow."""

    class Counting(ExemplarEngine):
        def __init__(self) -> None:
            super().__init__()
            self.frames = 0

        def inpaint(self, frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
            self.frames += int(masks.any(axis=(1, 2)).sum())
            return super().inpaint(frames, masks)

    hole, items = _still_shot(72, 112, 24, (slice(24, 48), slice(36, 76)), seed=4, blur=1.0)
    engine = Counting()
    res = list(TemporalEngine(engine, _cfg(keyframe_interval=5)).process(iter(items)))
    fills = np.stack([out[hole].astype(np.float32) for _, _, out in res])
    drift = np.abs(fills - fills[0]).mean(axis=(1, 2))
    assert drift.max() < 1.0, drift
    assert engine.frames == 1  # one invention for the whole shot


# ---------------------------------------------------------------- windows and memory


def test_window_joins_do_not_pop():
    gts, items = _panning_scene(n=20)
    small = list(
        TemporalEngine(TeleaStandIn(), _cfg(window_frames=8, overlap_frames=3)).process(iter(items))
    )
    big = list(TemporalEngine(TeleaStandIn(), _cfg(window_frames=60)).process(iter(items)))

    # Frame-to-frame change inside the holes (union of two consecutive holes) at window borders is
    # not larger than elsewhere, and the windowed result stays close to the one-window result.
    def jumps(res):
        out = []
        for t in range(len(res) - 1):
            m = res[t][1] | res[t + 1][1]
            gt_d = np.abs(gts[t].astype(np.float32) - gts[t + 1]).mean(axis=2)[m].mean()
            d = np.abs(res[t][2].astype(np.float32) - res[t + 1][2]).mean(axis=2)[m].mean()
            out.append(d - gt_d)
        return np.array(out)

    js = jumps(small)
    # windows start at 0, 5, 10, 15 and share frames 5-7, 10-12, 15-17 (cross-faded)
    borders = [t for t in (2, 3, 4, 7, 8, 9, 12, 13, 14) if t < js.size]
    inner = [t for t in range(js.size) if t not in borders]
    assert js[borders].max() <= js[inner].max() + 1.0
    diffs = [
        np.abs(a[2].astype(np.float32) - b[2])[a[1]].mean() for a, b in zip(small, big, strict=True)
    ]
    # (Shorter windows see fewer sources, so the two results differ a little.)
    assert np.mean(diffs) < 1.5 and max(diffs) < 5.0, diffs


def _held_ahead(eng: TemporalEngine, items: list) -> tuple[int, int]:
    """Run ``eng`` on ``items``: (frames yielded, most items pulled ahead of what was yielded)."""
    pulled = yielded = peak = 0

    def source() -> Iterator:
        nonlocal pulled, peak
        for it in items:
            pulled += 1
            peak = max(peak, pulled - yielded)
            yield it

    for _ in eng.process(source()):
        yielded += 1
    return yielded, peak


def test_memory_is_bounded_by_the_window():
    window, overlap = 8, 2
    frames, items = _panning_scene(n=25)
    cfg = _cfg(window_frames=window, overlap_frames=overlap)
    tail = temporal.window_tail(cfg, *frames[0].shape[:2])
    assert tail == 2  # a quarter of the window
    eng = TemporalEngine(TeleaStandIn(), cfg)
    yielded, peak = _held_ahead(eng, items)
    assert yielded == 25
    assert peak == window + tail + 1  # the window, and the frames read to know what follows it


def test_window_tail_and_plan():
    from lama_video.temporal import plan_windows, window_tail

    cfg = TemporalConfig()
    assert window_tail(cfg, 480, 854) == 15  # 60-frame windows, a quarter of one
    assert window_tail(cfg, 1080, 1920) == 0  # the byte budget already cuts the window to 21
    assert window_tail(TemporalConfig(window_frames=10, overlap_frames=8), 480, 854) == 1
    assert window_tail(TemporalConfig(window_max_mb=0), 3000, 4000) == 15
    # A 70-frame clip at 480p is one window (not 60 + 20, which repeats 10 frames for 10 new).
    assert plan_windows(70, 60, 10, 15) == [(0, 70)]
    assert plan_windows(76, 60, 10, 15) == [(0, 60), (50, 76)]
    assert plan_windows(200, 60, 10, 15) == [(0, 60), (50, 110), (100, 160), (150, 200)]
    assert plan_windows(225, 60, 10, 15) == [(0, 60), (50, 110), (100, 160), (150, 225)]
    assert plan_windows(226, 60, 10, 15)[-2:] == [(150, 210), (200, 226)]
    assert plan_windows(45, 12, 4) == [(0, 12), (8, 20), (16, 28), (24, 36), (32, 44), (40, 45)]


def test_last_window_takes_in_the_tail():
    """A clip one window plus a tail long is filled as one window: each frame the same as a run
    whose window holds the whole clip."""
    frames, items = _panning_scene(n=10)
    cfg = _cfg(window_frames=8, overlap_frames=2)
    assert temporal.window_tail(cfg, *frames[0].shape[:2]) == 2
    calls: list[int] = []
    eng = TemporalEngine(TeleaStandIn(), cfg)
    real = eng._window

    def spy(buf, *args, **kw):
        calls.append(len(buf))
        return real(buf, *args, **kw)

    eng._window = spy  # type: ignore[method-assign]
    out = [o for _, _, o in eng.process(iter(items))]
    assert calls == [10]
    whole = TemporalEngine(TeleaStandIn(), _cfg(window_frames=10, overlap_frames=2))
    for a, (_, _, b) in zip(out, whole.process(iter(items)), strict=True):
        assert np.array_equal(a, b)
    # One frame more is two windows: 8, and 5 that repeat the 2 shared ones.
    _, longer = _panning_scene(n=11)
    calls.clear()
    assert len(list(eng.process(iter(longer)))) == 11
    assert calls == [8, 5]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_short_clips(n):
    _, items = _panning_scene(n=n)
    res = list(TemporalEngine(TeleaStandIn(), _cfg()).process(iter(items)))
    assert len(res) == n
    for _frame, hole, out in res:
        assert not (out[hole] == (255, 0, 0)).all(axis=1).any()  # the occluder colour is gone


# ---------------------------------------------------------------- propagation confidence


def _ring_setup(h: int = 60, w: int = 80):
    frame = _texture(h, w, seed=7)
    hole = np.zeros((h, w), bool)
    hole[20:40, 25:55] = True
    ring = np.zeros_like(hole)
    ring[18:42, 23:57] = True
    ring &= ~hole
    hy, hx = np.nonzero(hole)
    ry, rx = np.nonzero(ring)
    ys, xs = np.concatenate([hy, ry]), np.concatenate([hx, rx])
    return frame, hole, ys, xs, hy.size


def test_ring_mismatch_is_small_for_a_correct_prediction_and_ignores_a_uniform_shift():
    from lama_video.temporal import _ring_mismatch

    frame, _hole, ys, xs, nh = _ring_setup()
    col = frame[ys, xs].astype(np.float32) + 20.0  # right geometry, uniformly brighter
    ok = np.ones(ys.size, bool)
    mm = _ring_mismatch(frame, ys, xs, nh, col, ok)
    assert mm is not None and mm.shape == (nh,)
    assert mm.max() < 0.5
    # A prediction from the wrong place (shifted texture) mismatches on the ring.
    wrong = np.roll(frame, 9, axis=1)[ys, xs].astype(np.float32)
    assert _ring_mismatch(frame, ys, xs, nh, wrong, ok).mean() > 10.0


def test_mismatching_propagation_yields_to_the_smooth_fill():
    from lama_video.flow_completion import harmonic_fill
    from lama_video.temporal import _OwnSmooth, _propagated_weight, _ring_mismatch, _yield_to_smooth

    frame, hole, ys, xs, nh = _ring_setup()
    own = _OwnSmooth(frame, hole)
    smooth = harmonic_fill(frame.astype(np.float32), hole)[ys[:nh], xs[:nh]]
    ok = np.ones(ys.size, bool)
    good = frame[ys, xs].astype(np.float32)
    mm = _ring_mismatch(frame, ys, xs, nh, good, ok)
    kept = _yield_to_smooth(own, ys, xs, nh, good, ok, _propagated_weight(mm, 12.0))
    np.testing.assert_allclose(kept[:nh], good[:nh], atol=1.0)  # trusted: unchanged
    wrong = np.roll(frame, 9, axis=1)[ys, xs].astype(np.float32)
    mm = _ring_mismatch(frame, ys, xs, nh, wrong, ok)
    out = _yield_to_smooth(own, ys, xs, nh, wrong, ok, _propagated_weight(mm, 12.0))
    # Distrusted: most of the way to the frame's own smooth fill.
    d_wrong = np.abs(wrong[:nh] - smooth).mean()
    assert np.abs(out[:nh] - smooth).mean() < 0.4 * d_wrong
    assert np.array_equal(out[nh:], wrong[nh:])  # the ring itself is never touched


def test_mismatching_copy_keeps_its_share_of_fine_detail_on_the_smooth_fill():
    from lama_video.flow_completion import harmonic_fill
    from lama_video.temporal import _OwnSmooth, _propagated_weight, _ring_mismatch, _yield_to_smooth

    frame, hole, ys, xs, nh = _ring_setup()
    frame = _texture(*hole.shape, seed=7, blur=0.7)  # fine texture (the ring setup's is smooth)
    ok = np.ones(ys.size, bool)
    wrong = np.roll(frame, 9, axis=1)[ys, xs].astype(np.float32)  # the texture, misplaced
    weight = _propagated_weight(_ring_mismatch(frame, ys, xs, nh, wrong, ok), 12.0)
    assert weight.max() < 0.2  # the fallback fires in full
    smooth = harmonic_fill(frame.astype(np.float32), hole)

    def fine_energy(values: np.ndarray) -> float:
        img = smooth.copy()
        img[ys[:nh], xs[:nh]] = values[:nh]
        grey = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        lap = np.abs(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F, ksize=3))
        return float(lap[22:38, 27:53].mean())  # inside the hole, off its edge

    copy = fine_energy(wrong)
    scores = {}
    for detail in (0.0, 0.5, 1.0):
        out = _yield_to_smooth(_OwnSmooth(frame, hole), ys, xs, nh, wrong, ok, weight, detail)
        assert np.array_equal(out[nh:], wrong[nh:])  # the ring itself is never touched
        scores[detail] = fine_energy(out) / copy
        # The coarse content is the frame's own smooth fill whatever detail is kept.
        coarse = cv2.GaussianBlur(out[:nh].reshape(20, 30, 3), (0, 0), 3.0)
        ref = cv2.GaussianBlur(smooth[20:40, 25:55], (0, 0), 3.0)
        assert np.abs(coarse - ref)[4:-4, 4:-4].mean() < 4.0
    assert scores[0.0] < 0.2, scores  # a smear
    assert 0.35 < scores[0.5] < 0.6 and scores[1.0] > 0.75, scores  # the detail, scaled


def test_doubt_raises_the_share_of_detail_smoothing_averages():
    from lama_video.temporal import _DOUBT_FULL, _detail_share

    propagated = np.array([True, True, True, True, False])
    weight = np.array([1.0, 1 - _DOUBT_FULL / 2, 1 - _DOUBT_FULL, 0.1, 0.1], np.float32)
    share = _detail_share(propagated, weight, 0.15)
    np.testing.assert_allclose(share, [0.15, 0.575, 1.0, 1.0, 0.15], atol=1e-6)


def test_doubted_pixels_have_their_detail_smoothed_in_full(monkeypatch: pytest.MonkeyPatch):
    # Every propagated pixel doubted by half: smoothing averages all of their detail, exactly as
    # with ``smoothing_detail`` 1; trusted, the two settings differ.
    import lama_video.temporal as tm

    _, items = _panning_scene(n=10, pan=1.5, blur=0.8)

    def run(detail: float) -> list[np.ndarray]:
        eng = TemporalEngine(TeleaStandIn(), _cfg(smoothing_detail=detail, fallback_detail=0.0))
        return [out for _f, _h, out in eng.process(items)]

    trusted = run(0.15), run(1.0)
    assert any(not np.array_equal(a, b) for a, b in zip(*trusted, strict=True))
    monkeypatch.setattr(tm, "_propagated_weight", lambda m, s: np.full(m.shape, 0.5, np.float32))
    doubted = run(0.15), run(1.0)
    for a, b in zip(*doubted, strict=True):
        assert np.array_equal(a, b)


def test_split_detail_takes_one_share_per_pixel():
    ys, xs = np.nonzero(np.ones((40, 60), bool))
    checker = np.where((ys + xs) % 2 == 0, 8.0, -8.0).astype(np.float32)
    change = np.repeat(checker[:, None], 3, axis=1)
    share = np.where(xs < 30, 0.0, 1.0).astype(np.float32)
    out = _split_detail(change, ys, xs, share)
    inner = (ys > 5) & (ys < 34) & (((xs > 5) & (xs < 24)) | ((xs > 35) & (xs < 54)))
    np.testing.assert_allclose(out[inner, 0], (share * checker)[inner], atol=1.5)
    same = _split_detail(change, ys, xs, np.full(ys.size, 0.5, np.float32))
    np.testing.assert_allclose(same, _split_detail(change, ys, xs, 0.5), atol=1e-5)


def test_edge_hold_holds_back_smoothing_of_distrusted_pixels_near_the_edge_only():
    from lama_video.temporal import _EDGE_HOLD_PX, _edge_hold

    _frame, hole, ys, xs, nh = _ring_setup()
    hy, hx = ys[:nh], xs[:nh]
    propagated = np.ones(nh, bool)
    # Every propagated pixel trusted: no hold at all.
    assert _edge_hold(hole, hy, hx, propagated, np.ones(nh, np.float32)) is None
    weight = np.full(nh, 0.2, np.float32)
    propagated[(hy == 20) & (hx > 40)] = False  # part of the top edge row was invented
    hold = _edge_hold(hole, hy, hx, propagated, weight)
    assert hold is not None and hold.shape == (nh,)
    # Distance to the known pixels (the hole is the box [20, 40) x [25, 55)).
    d = np.minimum.reduce([hy - 19, 40 - hy, hx - 24, 55 - hx])
    edge = propagated & (d == 1)
    np.testing.assert_allclose(hold[edge], 0.2, atol=1e-6)  # the doubtful edge keeps its own fill
    assert np.all(hold[d >= _EDGE_HOLD_PX] == 1.0)  # deep inside: smoothed as before
    assert np.all(hold[~propagated] == 1.0)  # invented pixels: smoothed as before
    mid = propagated & (d == 3)
    assert np.all((hold[mid] > 0.2) & (hold[mid] < 1.0))  # fading in between
    # More trust, less hold.
    hold2 = _edge_hold(hole, hy, hx, propagated, np.full(nh, 0.8, np.float32))
    assert hold2 is not None and np.all(hold2[edge] > hold[edge])


# ---------------------------------------------------------------- the window's canvases


@pytest.mark.parametrize(
    "box",
    [(20, 40, 30, 70), (0, 12, 0, 9), (50, 64, 80, 96), (0, 64, 40, 44)],
    ids=["inside", "top-left corner", "bottom-right corner", "full height"],
)
def test_canvas_reads_equal_those_of_the_full_filled_frame(box):
    from lama_video import flow as fl
    from lama_video.temporal import _Canvas

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    before = frame.copy()
    hole = np.zeros((64, 96), bool)
    y0, y1, x0, x1 = box
    hole[y0:y1, x0:x1] = True
    canvas = _Canvas(frame, hole)
    ys, xs = np.nonzero(hole)
    values = rng.integers(0, 256, (ys.size, 3), dtype=np.uint8)
    canvas.put(ys, xs, values)
    full = frame.copy()
    full[ys, xs] = values
    # Points everywhere, outside the image too, many of them a fraction of a pixel from the hole.
    px = rng.uniform(-3, 99, 20000).astype(np.float32)
    py = rng.uniform(-3, 67, 20000).astype(np.float32)
    np.testing.assert_array_equal(canvas.sample(px, py), fl.sample_points(full, px, py))
    np.testing.assert_array_equal(canvas.get(ys, xs), values)
    np.testing.assert_array_equal(canvas.image(), full)
    np.testing.assert_array_equal(canvas.window(5, 60, 2, 90), full[5:60, 2:90])
    np.testing.assert_array_equal(frame, before)  # the decoded frame itself is never written


def test_canvas_without_hole_is_the_frame_itself():
    from lama_video.temporal import _Canvas

    frame = np.zeros((8, 8, 3), np.uint8)
    assert _Canvas(frame, np.zeros((8, 8), bool)).image() is frame


def test_window_is_cut_by_the_byte_budget():
    from lama_video.temporal import window_for

    cfg = TemporalConfig()  # 60 frames, overlap 10, 128 MB
    assert window_for(cfg, 480, 854) == (60, 10)  # 1.2 MB frames: the budget does not bite
    assert window_for(cfg, 1080, 1920) == (21, 4)  # 6.2 MB frames: 21 of them fit
    assert window_for(cfg, 3000, 4000) == (4, 1)  # never below 4 frames
    assert window_for(TemporalConfig(window_max_mb=0), 3000, 4000) == (60, 10)
    assert window_for(TemporalConfig(overlap_frames=0), 1080, 1920) == (21, 0)
    # A 10-bit source's frames also hold their 16-bit picture: 9 bytes a pixel, a third as many.
    assert window_for(cfg, 1080, 1920, px_bytes=9) == (7, 1)


def test_engine_holds_the_cut_window_only():
    """At most ``window + overlap`` items are pulled ahead of what was yielded (96x160 frames)."""
    from lama_video.temporal import window_for

    cfg = _cfg(window_frames=20, overlap_frames=6, window_max_mb=1)
    window, overlap = window_for(cfg, 96, 160)
    assert (window, overlap) == (20, 6)  # 46 KB frames: 1 MB holds all 20
    cfg = _cfg(window_frames=40, overlap_frames=12, window_max_mb=1)
    window, overlap = window_for(cfg, 96, 160)
    assert (window, overlap) == (22, 7)
    _, items = _panning_scene(n=50)
    yielded, peak = _held_ahead(TemporalEngine(TeleaStandIn(), cfg), items)
    assert yielded == 50
    assert window < peak <= window + overlap + 1
    # Frames of a 10-bit source also hold their 16-bit picture: the same budget, fewer frames.
    deep = [(replace(f, deep=f.rgb.astype(np.uint16) * np.uint16(257)), hole) for f, hole in items]
    window, overlap = window_for(cfg, 96, 160, px_bytes=9)
    assert (window, overlap) == (7, 2)
    yielded, peak = _held_ahead(TemporalEngine(TeleaStandIn(), cfg), deep)
    assert yielded == 50
    assert window < peak <= window + overlap + 1


def test_invented_pixels_near_the_edge_take_the_frames_own_smooth_fill():
    from lama_video.temporal import (
        _EDGE_FULL_PX,
        _PIN_FADE_PX,
        _Canvas,
        _OwnSmooth,
        _pin_invented_edge,
    )

    # A linear ramp (harmonic: recovered exactly from its ring); the hole a 2 px line joined to
    # a 20 px block; the "invention" black everywhere.
    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([40 + 1.5 * xx, 60 + 2.0 * yy, 200 - xx - yy], axis=-1)
    frame = np.clip(np.rint(ramp), 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[30:32, 10:60] = True
    hole[21:41, 60:80] = True
    canvas = _Canvas(frame, hole)
    ys, xs = np.nonzero(hole)
    canvas.put(ys, xs, np.zeros((ys.size, 3), np.uint8))
    invented = np.ones(ys.size, bool)
    invented[(ys == 30) & (xs < 20)] = False  # propagated there: left alone
    own = _OwnSmooth(frame, hole)
    own.retain(ys[invented], xs[invented])  # as the engine does: only what may be pinned
    _pin_invented_edge(own, hole, ys, xs, invented, canvas)
    out = canvas.get(ys, xs).astype(np.float32)
    truth = ramp[ys, xs]
    dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[ys, xs]
    line = invented & (xs < 58)  # every pixel of the line is 1 px from a known one
    assert np.abs(out[line] - truth[line]).max() <= 2.0
    edge = invented & (dist <= _EDGE_FULL_PX)
    assert np.abs(out[edge] - truth[edge]).max() <= 2.5
    deep = invented & (dist >= _PIN_FADE_PX)
    assert deep.sum() > 20 and np.all(out[deep] == 0)  # the block's inside keeps the invention
    mid = invented & (dist > _EDGE_FULL_PX + 0.5) & (dist < _PIN_FADE_PX - 0.5)
    assert mid.any() and np.all((out[mid].mean(1) > 5) & (out[mid].mean(1) < truth[mid].mean(1)))
    assert np.all(out[~invented] == 0)


def test_the_frames_own_smooth_fill_is_the_same_after_keeping_a_few_pixels():
    from lama_video.flow_completion import harmonic_fill
    from lama_video.temporal import _OwnSmooth

    frame = _texture(48, 64, seed=3, blur=1.0)
    hole = np.zeros((48, 64), bool)
    hole[10:30, 12:40] = True
    hole[33:36, 5:60] = True
    ys, xs = np.nonzero(hole)
    own = _OwnSmooth(frame, hole)
    full = own.at(ys, xs)
    # The box of the hole grown by 2 px gives the same interpolation as the whole frame (the
    # coarse-to-fine solve only reads the hole's box and its 1 px border).
    whole = harmonic_fill(frame.astype(np.float32), hole, coarse_levels=1)[ys, xs]
    np.testing.assert_allclose(full, whole, atol=1e-3)
    rng = np.random.default_rng(0)
    pick = rng.permutation(ys.size)[:50]  # unsorted, as any subset may be
    unsolved = _OwnSmooth(frame, hole)
    unsolved.retain(ys[pick], xs[pick])  # nothing solved yet: left to be solved when read
    assert np.array_equal(unsolved.at(ys, xs), full)
    own.retain(ys[pick], xs[pick])
    some = rng.permutation(pick)[:20]
    assert np.array_equal(own.at(ys[some], xs[some]), full[some])
    dropped = np.setdiff1d(np.arange(ys.size), pick)[:1]
    with pytest.raises(ValueError, match="did not keep"):
        own.at(ys[dropped], xs[dropped])


class _BlackEngine:
    """An image engine whose invention is plain black: wrong wherever the scene is not."""

    name = "black"

    def inpaint(self, frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.where(masks[..., None], np.uint8(0), frames)


def test_a_thin_hole_no_frame_shows_is_filled_from_its_own_edges():
    # A 2 px line painted over a panning smooth scene, moving with it: no frame shows what is
    # under it, so all of it is invented; its real neighbours are a pixel away.
    n, h, w, pan = 10, 72, 120, 2.0
    big = _texture(h + 20, w + int(pan * n) + 40, seed=3, blur=6.0)
    items, gts = [], []
    for t in range(n):
        m = np.float32([[1, 0, pan * t], [0, 1, 5]])
        gt = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        hole = np.zeros((h, w), bool)
        hole[35:37, 20 - int(pan * t) : 100 - int(pan * t)] = True
        rgb = gt.copy()
        rgb[hole] = (255, 0, 255)
        gts.append(gt)
        items.append((Frame(t, None, Fraction(1, 25), rgb), hole))
    errs = {}
    for pin in (True, False):
        engine = TemporalEngine(_BlackEngine(), _cfg())
        engine.pin_invented_edges = pin
        res = list(engine.process(iter(items)))
        errs[pin] = [
            np.abs(out[hole].astype(np.float32) - gt[hole]).mean()
            for (_f, hole, out), gt in zip(res, gts, strict=True)
        ]
    assert max(errs[True]) < 2.0, errs  # 0.93
    assert min(errs[False]) > 50.0, errs  # the black invention: 105 levels off


def test_mixed_cells_and_source_groups_match_their_plain_numpy_forms() -> None:
    """The propagation pass's two helpers (OpenCV's 2x2 erosion and dilation for the address
    map's mixed footprints, one stable sort for the points of each source frame) give exactly
    what the plain forms they replaced give."""
    from lama_video.temporal import _groups, _mixed_cells

    rng = np.random.default_rng(3)
    for h, w in ((1, 1), (2, 7), (13, 9), (40, 57)):
        addr = rng.normal(size=(h, w, 5)).astype(np.float32)
        addr[..., 0] = rng.integers(-1, 4, (h, w))  # sources, -1 = none
        addr[: h // 2, : w // 2, 0] = 2.0  # a block of one source: footprints inside are not mixed
        src = np.full((h + 2, w + 2), -1.0, np.float32)
        src[1:-1, 1:-1] = addr[..., 0]
        quads = [src[:-1, :-1], src[1:, :-1], src[:-1, 1:], src[1:, 1:]]
        want = (np.maximum.reduce(quads) - np.minimum.reduce(quads)) >= 1e-3
        got = _mixed_cells(addr)
        assert got.shape == (h + 1, w + 1) and np.array_equal(got, want)
        if h > 4 and w > 4:
            assert not got[2 : h // 2, 2 : w // 2].any() and got.any()

    keys = rng.integers(-1, 6, 500)
    ok = (keys >= 0) & (rng.random(500) < 0.8)
    groups = list(_groups(keys, ok))
    assert [k for k, _ in groups] == sorted(np.unique(keys[ok]).tolist())
    for k, idx in groups:
        assert np.array_equal(idx, np.nonzero(ok & (keys == k))[0])
    assert list(_groups(keys, np.zeros(500, bool))) == []


# ------------------------------------------------------------- stale inventions


def test_stale_shift_moves_an_invention_to_the_frame_around_it_beyond_a_seams_few_levels():
    from lama_video.temporal import _Canvas, _ring_around, _stale_shift

    h, w = 60, 80
    hole = np.zeros((h, w), bool)
    hole[20:40, 25:55] = True
    hy, hx = np.nonzero(hole)
    ry, rx = _ring_around(hy, hx, h, w)
    ring = np.zeros_like(hole)
    ring[ry, rx] = True
    assert np.array_equal(ring, fl.dilate(hole, 2) & ~hole)  # 2 px round the hole, outside it
    edge = np.zeros_like(hole)
    edge[0:10, 0:10] = True  # at the frame's corner: the ring stays inside the frame
    ey, ex = _ring_around(*np.nonzero(edge), h, w)
    corner = np.zeros_like(hole)
    corner[ey, ex] = True
    assert np.array_equal(corner, fl.dilate(edge, 2) & ~edge)
    ys, xs = np.concatenate([hy, ry]), np.concatenate([hx, rx])
    ok = np.ones(ys.size, bool)
    levels = temporal._STALE_LEVELS
    for offset, moved in ((40.0, 40.0 - levels), (levels - 2.0, 0.0)):
        frame = np.full((h, w, 3), 100, np.uint8)  # the frame around the invention
        pulled = np.full((ys.size, 3), 100.0 + offset, np.float32)  # the keyframe's, brighter
        shift = _stale_shift(_Canvas(frame, hole), ys, xs, pulled, ok, hy.size)
        assert shift.shape == (hy.size, 3)
        # A uniform offset is spread as itself; all but _STALE_LEVELS of it is taken back.
        np.testing.assert_allclose(shift, -moved, atol=0.05)
    # A ring the pull did not reach says nothing.
    none = _stale_shift(
        _Canvas(frame, hole), ys, xs, pulled, ok & (np.arange(ys.size) < hy.size), hy.size
    )
    assert not none.any()


def test_an_invention_pulled_from_a_keyframe_follows_the_light_of_the_frame(monkeypatch):
    # A still scene whose light goes up 60 levels at frame 2 and back at frame 9, a hole no
    # frame sees under: frames between keyframes 0, 5 and 10 carried the keyframes' inventions
    # as they were made (a blend of a dark and a bright one), a patch off the frame's light; the
    # stale shift brings them to each frame's light, but for the seam's few levels.
    h, w, n = 72, 96, 11
    base = _texture(h, w, blur=6.0).astype(np.float32) * 0.4 + 40
    hole = np.zeros((h, w), bool)
    hole[24:48, 30:66] = True
    gts, items = [], []
    for t in range(n):
        gt = np.clip(base + (60 if 2 <= t <= 8 else 0), 0, 255).astype(np.uint8)
        rgb = gt.copy()
        rgb[hole] = (255, 0, 255)
        gts.append(gt)
        items.append((Frame(t, None, Fraction(1, 25), rgb), hole))
    deep = np.zeros((h, w), bool)
    deep[31:41, 37:59] = True  # 7 px from the hole's edge: past the pinned edges

    def error(levels: float) -> list[float]:
        monkeypatch.setattr(temporal, "_STALE_LEVELS", levels)
        eng = TemporalEngine(TeleaStandIn(), _cfg(keyframe_interval=5, smoothing_strength=0.0))
        outs = [o for _, _, o in eng.process(iter(items))]
        return [
            float(np.abs(outs[t][deep].astype(np.float32) - gts[t][deep]).mean())
            for t in (2, 3, 7, 8)
        ]

    levels = temporal._STALE_LEVELS
    before, after = error(float("inf")), error(levels)
    assert min(before) > 24.0, before  # the light's 24-36 levels and Telea's own error
    # Each frame is brought to within the allowance of its light: the rest is Telea's error.
    assert all(b - a > 9.0 for a, b in zip(after, before, strict=True)), (before, after)
    assert max(after) - min(after) < 0.5, after
