"""Flow completion: replace values inside holes by a smooth (harmonic) interpolation of the border.

Inside an object's hole, optical flow measures the object's motion, not the background's. The
temporal engine throws it away and solves Laplace's equation there instead: each hole pixel
becomes the mean of its four neighbours, the pixels just outside the hole are fixed (Dirichlet),
and the image border is a mirror (Neumann). The result depends only on the values outside the hole.

Large holes are solved coarse-to-fine (a cascadic multigrid): the hole is shrunk by 2 with a masked
average of the known pixels until it has few unknowns, solved exactly there with a sparse LU
factorisation, and each finer level starts from the upsampled coarse solution and is relaxed with a
few Jacobi sweeps. That keeps the cost linear in the hole size.

:func:`homography_fill` is the default for flow fields: where the flow in a ring around the hole
is one camera motion (a homography explains most of it), the hole gets that motion, not the
harmonic interpolation of the values next to it. Those values are the least reliable of all:
DIS's patches and pyramid smear motion across the hole's edge (the temporal engine shows DIS the
same smooth patch at the same place in both frames of a pair, which removes the object's motion
from it, but not the smear), and a harmonic fill spreads that error over the whole hole. Where no
single homography explains the ring (strong parallax, several motions), it falls back to the
harmonic fill; a forward/backward pair whose ring clearly holds two motions (an object the camera
follows, the scene racing past) gets both, each part of the hole the nearer one's.
"""

from __future__ import annotations

from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.flow import dilate, neighbour_mean, sample_points, vector_length

_MAX_DIRECT_UNKNOWNS = 400  # exact sparse solve below this many hole pixels (a few ms)
_SWEEPS_PER_LEVEL = 6  # Jacobi sweeps after upsampling a coarse solution
_RING_PX = 16  # the camera motion is fitted on this wide a ring around the hole
_RING_MAX_POINTS = 4000  # at most this many ring pixels (evenly spaced) enter the fit
_RANSAC_PX = 1.0  # a ring pixel agrees with the fitted motion within this (flow pixels)
_MIN_INLIER_SHARE = 0.3  # fewer agreeing ring pixels than this: no single camera motion
_MIN_RING_POINTS = 32
# Two motions around a hole (:func:`_paired_two_motions`): the ring's pixels the first leaves out
# are at least this share of the ring, the second explains at least this share of them, the two
# together at least this share of the ring, and they differ by at least this much (flow px).
# Measured with 0.15 / 0.3 / 0.4 for the first (README, fill quality): 0.3 kept.
_SECOND_SHARE = 0.3
_SECOND_FIT = 0.5
_BOTH_SHARE = 0.6
_MOTIONS_APART_PX = 2.0


def harmonic_fill(
    values: NDArray[np.float32],
    hole: NDArray[np.bool_],
    *,
    max_direct_unknowns: int = _MAX_DIRECT_UNKNOWNS,
    sweeps: int = _SWEEPS_PER_LEVEL,
    coarse_levels: int = 0,
) -> NDArray[np.float32]:
    """Fill ``hole`` with the harmonic interpolation of the values around it.

    Args:
        values: (H, W, C) or (H, W) float32; whatever lies inside ``hole`` is ignored.
        hole: (H, W) bool, True = unknown.
        max_direct_unknowns: holes with more pixels are solved coarse-to-fine.
        sweeps: Jacobi relaxation sweeps per refined level.
        coarse_levels: the finest this many levels are not relaxed: the solution of the level
            below is upsampled bilinearly into the hole (for a smooth, low-frequency fill, 4x
            cheaper per skipped level, slightly less exact next to the hole's border).

    Returns:
        Same shape and dtype as ``values``; equal to it outside ``hole``. A hole that covers the
        whole image (no boundary at all) is filled with zeros.
    """
    squeeze = values.ndim == 2
    vals = values[..., None] if squeeze else values
    out = np.array(vals, dtype=np.float32, copy=True)
    if hole.any():
        if hole.all():
            out[:] = 0.0
        else:
            rows = np.flatnonzero(hole.any(axis=1))
            cols = np.flatnonzero(hole.any(axis=0))
            h, w = hole.shape
            y0, y1 = max(0, int(rows[0]) - 1), min(h, int(rows[-1]) + 2)
            x0, x1 = max(0, int(cols[0]) - 1), min(w, int(cols[-1]) + 2)
            sub_hole = hole[y0:y1, x0:x1]
            sub = _solve(out[y0:y1, x0:x1], sub_hole, max_direct_unknowns, sweeps, coarse_levels)
            np.copyto(out[y0:y1, x0:x1], sub, where=sub_hole[..., None])
    return out[..., 0] if squeeze else out


def homography_fill(
    flow: NDArray[np.float32],
    hole: NDArray[np.bool_],
    *,
    paired: bool = False,
    ring_px: int = _RING_PX,
    ransac_px: float = _RANSAC_PX,
    min_inlier_share: float = _MIN_INLIER_SHARE,
) -> NDArray[np.float32]:
    """Fill ``hole`` in flow fields with the camera motion fitted on a ring around it.

    Each field (channels ``2k, 2k+1`` = x, y displacement in pixels) gets its own homography,
    fitted with RANSAC (OpenCV's, deterministically seeded) on the ring of ``ring_px`` pixels
    around the hole. A field whose ring is not explained by one homography (fewer than
    ``min_inlier_share`` of its pixels within ``ransac_px``, too few ring pixels, or a degenerate
    fit) is filled by :func:`harmonic_fill` instead.

    With ``paired`` (``flow`` is a field a -> b and the field b -> a of the same two frames, 4
    channels), a pair of which either field fails so is fitted jointly instead: one homography on
    the ring pixels where the two fields agree, forward in the first field and inverted in the
    second (:func:`_paired_motion`). In fast motion (a jump filmed with a whip pan: 15-30 px per
    frame at 432x240) DIS's ring flow is right on a minority of pixels and each field alone
    fails; the harmonic fill of two disagreeing fields then stopped every propagation chain.
    Before all that, a pair whose consistent ring pixels hold two clearly different motions (an
    object the camera follows, the scene racing past behind it) gets both, each hole pixel the
    motion of the ring pixels nearer it (:func:`_paired_two_motions`).

    Args:
        flow: (H, W, 2k) float32 flow fields; whatever lies inside ``hole`` is ignored.
        hole: (H, W) bool, True = unknown.
        paired: ``flow`` is (H, W, 4): a field a -> b, then the field b -> a.

    Returns:
        Same shape as ``flow``; equal to it outside ``hole``.
    """
    if flow.ndim != 3 or flow.shape[2] % 2:
        raise ValueError(f"flow must be (H, W, 2k), got shape {flow.shape}")
    out = np.array(flow, dtype=np.float32, copy=True)
    if not hole.any():
        return out
    ring = dilate(hole, ring_px) & ~hole
    ry, rx = np.nonzero(ring)
    if ry.size > _RING_MAX_POINTS:
        keep = np.linspace(0, ry.size - 1, _RING_MAX_POINTS).astype(np.intp)
        ry, rx = ry[keep], rx[keep]
    hy, hx = np.nonzero(hole)
    src = np.stack([rx, ry], axis=1).astype(np.float32)
    fallback: list[int] = []  # first channels of the fields no single motion explains
    motions: list[NDArray[np.float32] | None] = []
    joint = paired and flow.shape[2] == 4 and ry.size >= _MIN_RING_POINTS
    # The pair's consistent ring correspondences, for both joint fits below (computed once).
    pairs = _ring_pairs(flow, rx, ry) if joint else None
    if pairs is not None:
        two = _paired_two_motions(*pairs, hx, hy, ransac_px)
        if two is not None:
            out[hy, hx, 0:2], out[hy, hx, 2:4] = two
            return out
    for c in range(0, flow.shape[2], 2):
        motion = None
        if ry.size >= _MIN_RING_POINTS:
            disp = flow[ry, rx, c : c + 2]
            motion = _camera_motion(src, disp, hx, hy, ransac_px, min_inlier_share)
        motions.append(motion)
    failed = any(m is None for m in motions)
    if pairs is not None and failed:
        # Fast motion: DIS's ring flow is largely wrong and neither field alone is one motion.
        # Where the two fields agree they are mostly right; one motion fitted there both ways.
        both = _paired_motion(*pairs, hx, hy, ransac_px, min_inlier_share)
        if both is not None:
            motions = list(both)
    for c, motion in zip(range(0, flow.shape[2], 2), motions, strict=True):
        if motion is None:
            fallback += [c, c + 1]
        else:
            out[hy, hx, c : c + 2] = motion
    if fallback:  # one harmonic solve for all of them
        out[..., fallback] = harmonic_fill(np.ascontiguousarray(flow[..., fallback]), hole)
    return out


def _paired_motion(
    s: NDArray[np.float32],
    t: NDArray[np.float32],
    hx: NDArray[np.intp],
    hy: NDArray[np.intp],
    ransac_px: float,
    min_inlier_share: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """One homography for a forward/backward pair of fields, fitted on their consistent ring.

    ``s -> t``: the correspondences of :func:`_ring_pairs` (the ring pixels whose two flows
    agree, both ways); one homography H is fitted to all of them, and the hole gets H forward and
    H^-1 backward: the completed pair is consistent by construction. None where too few ring
    pixels agree or no single motion explains them.
    """
    if len(s) < _MIN_RING_POINTS:
        return None
    hom = _fit(s, t, ransac_px, min_inlier_share)
    if hom is None:
        return None
    reach = float(np.abs(t - s).max()) * 4.0 + 8.0
    try:
        inverse = np.linalg.inv(hom).astype(np.float64)
    except np.linalg.LinAlgError:  # a degenerate fit
        return None
    fwd = _displacement(hom, hx, hy, reach)
    bwd = _displacement(inverse, hx, hy, reach)
    if fwd is None or bwd is None:
        return None
    return fwd, bwd


def _ring_pairs(
    flow: NDArray[np.float32], rx: NDArray[np.intp], ry: NDArray[np.intp]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Correspondences from frame a to frame b: the ring pixels whose forward and backward flows
    agree (the round trip returns within ``1 + 0.05 |flow|`` px), both ways (the backward ones
    inverted). ``flow``: (H, W, 4), the field a -> b, then b -> a."""
    ff, fb = flow[..., 0:2], flow[..., 2:4]
    p = np.stack([rx, ry], axis=1).astype(np.float32)
    src, dst = [], []
    for there, back, forward in ((ff, fb, True), (fb, ff, False)):
        d = there[ry, rx]
        q = p + d
        ret = sample_points(back, q[:, 0].copy(), q[:, 1].copy(), border_value=1e4)
        ok = vector_length(d + ret) < 1.0 + 0.05 * vector_length(d)
        src.append(p[ok] if forward else q[ok])
        dst.append(q[ok] if forward else p[ok])
    return np.concatenate(src), np.concatenate(dst)


def _paired_two_motions(
    s: NDArray[np.float32],
    t: NDArray[np.float32],
    hx: NDArray[np.intp],
    hy: NDArray[np.intp],
    ransac_px: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """Two motions around the hole, for a forward/backward pair of fields.

    An object the camera follows with the scene racing past behind it (a jump filmed from the
    side), a hole over a car's edge with the road beyond: the ring holds two motions, and one
    homography gives the whole hole one of them. Fitted on both fields' consistent ring pixels
    at once (``s -> t``, :func:`_ring_pairs`): the first homography by RANSAC, the second on the
    pixels it leaves out. Both are used when those pixels are at least ``_SECOND_SHARE`` of the
    ring, the second homography explains at least ``_SECOND_FIT`` of them, the two together at
    least ``_BOTH_SHARE`` of the ring, and they differ by at least ``_MOTIONS_APART_PX`` on the
    second's pixels. Each hole pixel then takes the motion of the nearer ring pixels (their
    positions in frame a for the forward field, in frame b for the backward one, so the two
    fields agree).

    Returns:
        The forward and backward displacements at ``(hx, hy)``, or None (no clear second motion).
    """
    n = len(s)
    if n < 2 * _MIN_RING_POINTS:
        return None
    found_a, inl_a = cv2.findHomography(s, t, cv2.RANSAC, ransac_px)
    if found_a is None or inl_a is None:
        return None
    hom_a: NDArray[np.float64] = np.asarray(found_a, np.float64)
    in_a = inl_a.ravel().astype(bool)
    rest = np.flatnonzero(~in_a)
    if rest.size < max(_MIN_RING_POINTS, _SECOND_SHARE * n):
        return None
    found_b, inl_b = cv2.findHomography(s[rest], t[rest], cv2.RANSAC, ransac_px)
    if found_b is None or inl_b is None:
        return None
    hom_b: NDArray[np.float64] = np.asarray(found_b, np.float64)
    in_b = np.zeros(n, bool)
    in_b[rest[inl_b.ravel().astype(bool)]] = True
    if in_b.sum() < _SECOND_FIT * rest.size or in_a.sum() + in_b.sum() < _BOTH_SHARE * n:
        return None
    pb = s[in_b]
    da = _displacement(hom_a, pb[:, 0], pb[:, 1], np.inf)
    db = _displacement(hom_b, pb[:, 0], pb[:, 1], np.inf)
    if da is None or db is None or float(vector_length(da - db).mean()) < _MOTIONS_APART_PX:
        return None
    try:
        inv_a = np.linalg.inv(hom_a).astype(np.float64)
        inv_b = np.linalg.inv(hom_b).astype(np.float64)
    except np.linalg.LinAlgError:  # a degenerate fit
        return None
    reach = float(np.abs(t - s).max()) * 4.0 + 8.0
    out = []
    for pts, (h_a, h_b) in ((s, (hom_a, hom_b)), (t, (inv_a, inv_b))):
        ma = _displacement(h_a, hx, hy, reach)
        mb = _displacement(h_b, hx, hy, reach)
        if ma is None or mb is None:
            return None
        use_b = _nearer(pts[in_b], pts[in_a], hx, hy)
        out.append(np.where(use_b[:, None], mb, ma).astype(np.float32))
    return out[0], out[1]


def _nearer(
    first: NDArray[np.float32],
    second: NDArray[np.float32],
    hx: NDArray[np.intp],
    hy: NDArray[np.intp],
) -> NDArray[np.bool_]:
    """Per pixel ``(hx, hy)``: whether the nearest of the points ``first`` ((n, 2) x, y) is nearer
    than the nearest of ``second`` (points rounded to pixels; distance transforms on their box)."""
    pts = [np.rint(first).astype(np.intp), np.rint(second).astype(np.intp)]
    xs = np.concatenate([hx, pts[0][:, 0], pts[1][:, 0]])
    ys = np.concatenate([hy, pts[0][:, 1], pts[1][:, 1]])
    x0, y0 = int(xs.min()), int(ys.min())
    shape = (int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1)
    dist = []
    for p in pts:
        canvas = np.full(shape, 255, np.uint8)
        canvas[p[:, 1] - y0, p[:, 0] - x0] = 0
        dist.append(cv2.distanceTransform(canvas, cv2.DIST_L2, 3)[hy - y0, hx - x0])
    return dist[0] < dist[1]


def _fit(
    src: NDArray[np.float32], dst: NDArray[np.float32], ransac_px: float, min_inlier_share: float
) -> NDArray[np.float64] | None:
    """Homography ``src -> dst`` by RANSAC; None unless ``min_inlier_share`` of points agree."""
    hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, ransac_px)
    if hom is None or inliers is None or float(inliers.mean()) < min_inlier_share:
        return None
    return cast(NDArray[np.float64], hom)


def _displacement(
    hom: NDArray[np.float64], hx: NDArray[Any], hy: NDArray[Any], reach: float
) -> NDArray[np.float32] | None:
    """``hom`` as a displacement at ``(hx, hy)``; None where it degenerates or exceeds ``reach``."""
    x, y = hx.astype(np.float64), hy.astype(np.float64)
    den = hom[2, 0] * x + hom[2, 1] * y + hom[2, 2]
    if float(np.abs(den).min()) < 1e-3:  # the hole reaches the plane's horizon: degenerate
        return None
    mx = (hom[0, 0] * x + hom[0, 1] * y + hom[0, 2]) / den - x
    my = (hom[1, 0] * x + hom[1, 1] * y + hom[1, 2]) / den - y
    motion = np.stack([mx, my], axis=1)
    if not np.isfinite(motion).all() or float(np.abs(motion).max()) > reach:
        return None  # an extrapolation far beyond any motion measured on the ring
    return motion.astype(np.float32)


def _camera_motion(
    src: NDArray[np.float32],
    disp: NDArray[np.float32],
    hx: NDArray[np.intp],
    hy: NDArray[np.intp],
    ransac_px: float,
    min_inlier_share: float,
) -> NDArray[np.float32] | None:
    """The homography fitted on ``src -> src + disp``, as a displacement at ``(hx, hy)``."""
    hom = _fit(src, src + disp, ransac_px, min_inlier_share)
    if hom is None:
        return None
    return _displacement(hom, hx, hy, float(np.abs(disp).max()) * 4.0 + 8.0)


def _solve(
    vals: NDArray[np.float32], hole: NDArray[np.bool_], max_direct: int, sweeps: int, skip: int = 0
) -> NDArray[np.float32]:
    """Harmonic fill of a crop whose every hole component touches a known pixel or the crop edge."""
    n = int(hole.sum())
    h, w = hole.shape
    if n <= max_direct or min(h, w) < 4:
        return _direct(vals, hole)
    # Push: 2x2 masked average of the known pixels; a coarse cell is unknown only if all four are.
    hp, wp = h + (h & 1), w + (w & 1)
    c = vals.shape[2]
    known = np.zeros((hp, wp), np.float32)
    known[:h, :w] = ~hole
    acc = np.zeros((hp, wp, c), np.float32)
    np.copyto(acc[:h, :w], vals, where=~hole[..., None])  # whatever the hole holds (even NaN)
    # An exact 2x area shrink is the 2x2 mean (a quarter of the sums).
    cnt = cv2.resize(known, (wp // 2, hp // 2), interpolation=cv2.INTER_AREA)
    tot = cv2.resize(acc, (wp // 2, hp // 2), interpolation=cv2.INTER_AREA).reshape(
        hp // 2, wp // 2, c
    )
    coarse_hole = cnt < 0.125  # no known pixel among the four
    # float32 (cv2.resize keeps the dtype); numpy's stubs would say float64.
    coarse = cast(NDArray[np.float32], tot / np.maximum(cnt, 0.25)[..., None])
    coarse = _solve(coarse, coarse_hole, max_direct, sweeps, skip - 1)
    # Pull: bilinear upsampling as the start, then Jacobi sweeps on the fine grid.
    up = cast(NDArray[np.float32], cv2.resize(coarse, (wp, hp), interpolation=cv2.INTER_LINEAR))
    x = np.ascontiguousarray(vals, dtype=np.float32).copy()
    _put(x, up.reshape(hp, wp, -1)[:h, :w], hole)
    if skip > 0:
        return x
    return _jacobi(x, hole, sweeps)


def _put(dst: NDArray[np.float32], src: NDArray[np.float32], hole: NDArray[np.bool_]) -> None:
    """``dst[hole] = src[hole]`` in place; (H, W, C) float32, C <= 4 (cv2 masked copy)."""
    c = dst.shape[2]
    d = dst[..., 0] if c == 1 else dst
    s = np.ascontiguousarray(src[..., 0] if c == 1 else src)
    cv2.copyTo(s, hole.view(np.uint8), d)


def _jacobi(x: NDArray[np.float32], hole: NDArray[np.bool_], sweeps: int) -> NDArray[np.float32]:
    """Relax the hole pixels towards the mean of their 4 neighbours (edges mirrored = Neumann).

    ``x`` is (H, W, C) float32 C-contiguous, C <= 4; it is updated in place and returned.
    """
    c = x.shape[2]
    img = x[..., 0] if c == 1 else x  # a view: cv2 writes through it
    avg = np.empty_like(img)
    mask = hole.view(np.uint8)
    for _ in range(sweeps):
        neighbour_mean(img, dst=avg)
        cv2.copyTo(avg, mask, img)
    return x


def _direct(vals: NDArray[np.float32], hole: NDArray[np.bool_]) -> NDArray[np.float32]:
    """Exact solve of the 5-point Laplace system on the hole pixels (sparse LU)."""
    # Late: SciPy's sparse package takes 0.2-0.3 s to import, and a run that never needs a direct
    # solve (or needs it only once its first frames are decoded) should not wait for it at start.
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla

    h, w = hole.shape
    idx = -np.ones((h, w), np.int64)
    ys, xs = np.nonzero(hole)
    n = ys.size
    idx[ys, xs] = np.arange(n)
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    diag = np.zeros(n, np.float64)
    rhs = np.zeros((n, vals.shape[2]), np.float64)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        diag += inside  # a missing neighbour (image edge) drops out: Neumann boundary
        k = np.nonzero(inside)[0]
        nb = idx[ny[k], nx[k]]
        unknown = nb >= 0
        rows.append(k[unknown])
        cols.append(nb[unknown])
        kk = k[~unknown]
        rhs[kk] += vals[ny[kk], nx[kk]]
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    a = sp.csc_matrix(
        (
            np.concatenate([diag, -np.ones(r.size)]),
            (np.concatenate([np.arange(n), r]), np.concatenate([np.arange(n), c])),
        ),
        shape=(n, n),
    )
    out = vals.copy()
    try:
        sol = sla.splu(a, permc_spec="MMD_AT_PLUS_A").solve(rhs)
    except RuntimeError:  # a component with no known neighbour at all: singular, fall back
        sol = np.zeros_like(rhs)
        known = ~hole
        if known.any():
            sol[:] = vals[known].mean(axis=0)
    out[ys, xs] = sol.astype(np.float32)
    return out
