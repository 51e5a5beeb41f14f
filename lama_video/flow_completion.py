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
harmonic fill.
"""

from __future__ import annotations

from typing import cast

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
    for c in range(0, flow.shape[2], 2):
        motion = None
        if ry.size >= _MIN_RING_POINTS:
            disp = flow[ry, rx, c : c + 2]
            motion = _camera_motion(src, disp, hx, hy, ransac_px, min_inlier_share)
        motions.append(motion)
    failed = any(m is None for m in motions)
    if paired and flow.shape[2] == 4 and failed and ry.size >= _MIN_RING_POINTS:
        # Fast motion: DIS's ring flow is largely wrong and neither field alone is one motion.
        # Where the two fields agree they are mostly right; one motion fitted there both ways.
        both = _paired_motion(flow, rx, ry, hx, hy, ransac_px, min_inlier_share)
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
    flow: NDArray[np.float32],
    rx: NDArray[np.intp],
    ry: NDArray[np.intp],
    hx: NDArray[np.intp],
    hy: NDArray[np.intp],
    ransac_px: float,
    min_inlier_share: float,
) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """One homography for a forward/backward pair of fields, fitted on their consistent ring.

    Ring pixels whose two flows agree (the round trip returns within ``1 + 0.05 |flow|`` px)
    give correspondences both ways (the backward ones inverted); one homography H is fitted to
    all of them, and the hole gets H forward and H^-1 backward: the completed pair is consistent
    by construction. None where too few ring pixels agree or no single motion explains them.
    """
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
    s, t = np.concatenate(src), np.concatenate(dst)
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


def _fit(
    src: NDArray[np.float32], dst: NDArray[np.float32], ransac_px: float, min_inlier_share: float
) -> NDArray[np.float64] | None:
    """Homography ``src -> dst`` by RANSAC; None unless ``min_inlier_share`` of points agree."""
    hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, ransac_px)
    if hom is None or inliers is None or float(inliers.mean()) < min_inlier_share:
        return None
    return cast(NDArray[np.float64], hom)


def _displacement(
    hom: NDArray[np.float64], hx: NDArray[np.intp], hy: NDArray[np.intp], reach: float
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
