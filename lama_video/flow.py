"""Optical flow and warping (OpenCV DIS; sparse Lucas-Kanade tracks; homographies from tracks
and ORB matches): estimate, scale, warp, align.

Conventions: a flow field is (H, W, 2) float32 in pixels, ``flow[y, x] = (dx, dy)``, mapping a
pixel of the *source* frame to its position in the *target* frame:
``target[y + dy, x + dx] ~ source[y, x]``.
"""

from __future__ import annotations

from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def to_gray(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma."""
    return cast(NDArray[np.uint8], cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def working_scale(height: int, width: int, max_side_px: int) -> float:
    """Factor (<= 1) that brings the longest side down to ``max_side_px``."""
    return min(1.0, max_side_px / max(height, width))


def resize(img: NDArray, size_wh: tuple[int, int], *, nearest: bool = False) -> NDArray:
    """Resize an image or flow field to ``(width, height)`` (area to shrink, else linear)."""
    h, w = img.shape[:2]
    if (w, h) == size_wh:
        return img
    if nearest:
        interp = cv2.INTER_NEAREST
    elif size_wh[0] < w:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LINEAR
    return cv2.resize(img, size_wh, interpolation=interp)


class FlowEstimator:
    """Dense flow between two frames with OpenCV DIS, computed at reduced size for large frames.

    Args:
        preset: DIS preset name: ``ultrafast``, ``fast`` or ``medium``.
        max_side_px: flow is computed with the longest side at most this, then scaled back up.
    """

    def __init__(self, *, preset: str = "medium", max_side_px: int = 640) -> None:
        if preset not in _DIS_PRESETS:
            raise ValueError(
                f"unknown DIS preset {preset!r}; expected one of {', '.join(_DIS_PRESETS)}"
            )
        self.preset = preset
        self.max_side_px = max_side_px
        self._dis = cv2.DISOpticalFlow.create(_DIS_PRESETS[preset])

    def __call__(self, src: NDArray[np.uint8], dst: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Flow from ``src`` to ``dst``.

        Args:
            src, dst: (H, W, 3) uint8 RGB or (H, W) uint8 gray, same size.

        Returns:
            (H, W, 2) float32 flow in full-resolution pixels.
        """
        g0 = src if src.ndim == 2 else to_gray(src)
        g1 = dst if dst.ndim == 2 else to_gray(dst)
        h, w = g0.shape
        s = working_scale(h, w, self.max_side_px)
        if s < 1.0:
            size = (max(8, round(w * s)), max(8, round(h * s)))
            g0, g1 = resize(g0, size), resize(g1, size)
        flow = _dis_calc(self._dis, g0, g1)
        if s < 1.0:
            sx, sy = w / flow.shape[1], h / flow.shape[0]
            flow = resize(flow, (w, h))
            flow[..., 0] *= sx
            flow[..., 1] *= sy
        return flow.astype(np.float32, copy=False)


def sample(
    img: NDArray,
    coords_xy: NDArray[np.float32],
    *,
    nearest: bool = False,
    border_value: float = 0.0,
) -> NDArray:
    """Sample ``img`` at absolute coordinates ``coords_xy`` ((H, W, 2) float32, x then y).

    Points outside the image get ``border_value``.
    """
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(
        img,
        coords_xy[..., 0],
        coords_xy[..., 1],
        interp,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border_value,
    )


def grid(height: int, width: int) -> NDArray[np.float32]:
    """(H, W, 2) float32 pixel coordinates (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def backward_warp(
    img: NDArray, flow: NDArray[np.float32], *, nearest: bool = False, border_value: float = 0.0
) -> NDArray:
    """Pull ``img`` along ``flow``: ``out[y, x] = img[y + flow_y, x + flow_x]``.

    With ``flow`` the flow from frame A to frame B and ``img`` frame B, the result is B aligned
    to A.
    """
    h, w = flow.shape[:2]
    return sample(img, grid(h, w) + flow, nearest=nearest, border_value=border_value)


def vector_length(v: NDArray[np.floating]) -> NDArray[np.floating]:
    """Length of each 2-vector of a (..., 2) float array, in its dtype.

    The same numbers as ``np.linalg.norm(v, axis=-1)``, about 5x faster: NumPy reduces over a
    trailing axis of 2 element by element (0.7 instead of 3.3 ms on a 640x360 flow field).
    """
    x, y = v[..., 0], v[..., 1]
    return cast(NDArray[np.floating], np.sqrt(x * x + y * y))


def fb_error(
    flow_ab: NDArray[np.float32],
    flow_ba: NDArray[np.float32],
    box: tuple[int, int, int, int] | None = None,
) -> NDArray[np.float32]:
    """Forward-backward consistency error in pixels, (H, W) float32, in frame A's coordinates.

    ``box`` (y0, y1, x0, x1): both flows are zero outside it (computed on that crop only); the
    error is then worked out inside it alone, the same numbers there as over the whole frame (a
    point carried out of the box reads the zero flow there, as it would), and 0 outside it (as
    over the whole frame, but for its last row and column, where bilinear reads pass the edge
    and give inf).
    """
    if box is None:
        back = backward_warp(flow_ba, flow_ab, border_value=np.nan)
        err = vector_length(flow_ab + back)
        return np.nan_to_num(err, nan=np.inf).astype(np.float32)
    y0, y1, x0, x1 = box
    ab = flow_ab[y0:y1, x0:x1]
    coords = grid(y1 - y0, x1 - x0) + np.array([x0, y0], np.float32) + ab
    back = sample(flow_ba, coords, border_value=np.nan)
    out = np.zeros(flow_ab.shape[:2], np.float32)
    out[y0:y1, x0:x1] = np.nan_to_num(vector_length(ab + back), nan=np.inf)
    return out


# --- Helpers for the temporal engine (working-resolution flow, sparse sampling, mask shaping). ---


def estimate_gray(
    estimator: FlowEstimator,
    src: NDArray[np.uint8],
    dst: NDArray[np.uint8],
    init: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """DIS flow between two gray images at *their* size (no rescaling).

    The temporal engine shrinks every frame once to its working size and calls this for both
    directions, so each frame is converted and resized a single time.

    Args:
        estimator: supplies the DIS preset.
        src, dst: (h, w) uint8 gray, same size.
        init: (h, w, 2) float32 flow DIS starts from (refined from its coarsest scale), instead of
            zero: a motion larger than DIS's pyramid reaches from zero, known from elsewhere.

    Returns:
        (h, w, 2) float32 flow in pixels of that size.
    """
    # NOTE: a fresh DIS instance per call. OpenCV's DIS keeps buffers from its previous call, and
    # when the image size changes between calls its result depends on that history; the temporal
    # engine's crops change size from pair to pair, and results must not depend on call order
    # (window and Ray-part joins are exact).
    dis = cv2.DISOpticalFlow.create(_DIS_PRESETS[estimator.preset])
    return _dis_calc(dis, src, dst, init).astype(np.float32, copy=False)


#: Sparse tracks for :func:`track_homography`: at most this many corners, ...
_TRACK_CORNERS = 600
#: ... tracked with pyramidal Lucas-Kanade (21x21 windows, 4 levels above the image: motions of a
#: few tens of pixels), kept when the track back lands within this of its start (px).
_TRACK_FB_PX = 1.0
_TRACK_MIN = 20  # tracks needed for a fit
_CORNER_MARGIN_PX = 3  # context around the corners' search box (see _corners)


def track_homography(
    src: NDArray[np.uint8],
    dst: NDArray[np.uint8],
    where: NDArray[np.bool_],
    *,
    min_inlier_share: float = 0.5,
    max_corners: int = _TRACK_CORNERS,
) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float32]] | None:
    """The motion ``src -> dst`` of the corners in ``where``, as one homography.

    Corners (Shi-Tomasi) are tracked with pyramidal Lucas-Kanade both ways; the tracks that
    return within ``_TRACK_FB_PX`` are fitted with RANSAC (1 px). Unlike dense DIS started from
    zero, the pyramid follows motions of a few tens of pixels (a whip pan).

    Args:
        src, dst: (h, w) uint8 gray, same size.
        where: (h, w) bool, where corners may be taken (the scene, not the holes).
        min_inlier_share: None unless this share of the consistent tracks fit the homography
            (one motion, not several).
        max_corners: at most this many corners, the strongest (the first ``k`` of them are the
            same whatever the limit, and each is tracked on its own).

    Returns:
        (homography, points in ``src``, their positions in ``dst``) of the fit's inliers, or None.
    """
    tracks = _tracks(src, dst, where, levels=4, max_corners=max_corners)
    if tracks is None:
        return None
    p0, p1, ok = tracks
    hom, inliers = cv2.findHomography(p0[ok], p1[ok], cv2.RANSAC, 1.0)
    if hom is None or inliers is None or float(inliers.mean()) < min_inlier_share:
        return None
    keep = inliers.ravel().astype(bool)
    return (
        cast(NDArray[np.float64], hom),
        p0[ok][keep].astype(np.float32),
        p1[ok][keep].astype(np.float32),
    )


#: :func:`align_homography`: ORB keypoints per image, and the matches its first fit needs.
_ALIGN_FEATURES = 3000
_ALIGN_MIN_MATCHES = 12


def align_homography(
    src: NDArray[np.uint8], dst: NDArray[np.uint8], where: NDArray[np.bool_]
) -> NDArray[np.float64] | None:
    """The homography taking ``src``'s scene to ``dst``'s, for frames any distance apart.

    ORB keypoints of ``src`` (inside ``where``) and of ``dst`` are matched (cross-checked
    Hamming) and fitted with RANSAC (3 px): that reaches motions of any size, to about a pixel
    (where ORB finds too few keypoints, the tracks below start from rest). The fit is then
    refined with sub-pixel tracks: Shi-Tomasi corners of ``src`` in ``where``, tracked into
    ``dst`` by pyramidal Lucas-Kanade started where the first fit puts them (so only a residual
    is tracked), kept when the track back returns within 1 px, and fitted again (RANSAC, 1 px).

    Args:
        src, dst: (h, w) uint8 gray; sizes may differ (``dst`` is then warped onto ``src`` by
            the matched fit first, and the tracks refine that).
        where: (h, w) bool over ``src``: where its scene may be used (not the object).

    Returns:
        (3, 3) float64 homography (``src`` pixel -> ``dst`` pixel), or None where either fit
        finds too few consistent points (no shared scene, or several motions, none dominant).
    """
    rough = _matched_homography(src, dst, where)
    if src.shape != dst.shape:
        # Tracks need two images of one size: track into dst warped onto src by the matched fit
        # (only a residual is left), then compose.
        if rough is None:
            return None
        h, w = src.shape[:2]
        warped = cv2.warpPerspective(
            dst, rough, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        )
        residual = align_homography(src, np.ascontiguousarray(warped), where)
        return None if residual is None else rough @ residual
    # From the matched fit, only a residual is left to track; without one (too few keypoints:
    # a small or plain frame), the pyramid's 4 levels reach a few tens of pixels from rest.
    levels = 4 if rough is None else 2
    tracks = _tracks(src, dst, where, levels=levels, from_corners=True, guess=rough)
    if tracks is None:
        return None
    p0, p1, ok = tracks
    h, w = dst.shape[:2]
    ok &= (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
    if int(ok.sum()) < _TRACK_MIN:
        return None
    hom, inliers = cv2.findHomography(p0[ok], p1[ok], cv2.RANSAC, 1.0)
    if hom is None or inliers is None or float(inliers.mean()) < 0.5:
        return None
    return cast(NDArray[np.float64], hom)


def _corners(
    src: NDArray[np.uint8], where: NDArray[np.bool_], max_corners: int = _TRACK_CORNERS
) -> NDArray[np.float32] | None:
    """Shi-Tomasi corners of ``src`` in ``where`` ((N, 1, 2) float32, strongest first), or None.

    Searched on the box around ``where`` plus ``_CORNER_MARGIN_PX``: the corner measure at a pixel
    reads 2 px around it and the local-maximum test one more, so inside ``where`` every value,
    and the strongest one the quality level is relative to, is the whole image's; the same
    corners in the same order, without the measure over the rest of the frame (a pair's box is a
    fraction of it).
    """
    box = bbox(where, _CORNER_MARGIN_PX)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    corners = cv2.goodFeaturesToTrack(
        np.ascontiguousarray(src[y0:y1, x0:x1]),
        max_corners,
        0.01,
        4,
        mask=where[y0:y1, x0:x1].view(np.uint8) * np.uint8(255),
    )
    if corners is None:
        return None
    corners += np.array([x0, y0], np.float32)
    return cast(NDArray[np.float32], corners)


def _tracks(
    src: NDArray[np.uint8],
    dst: NDArray[np.uint8],
    where: NDArray[np.bool_],
    *,
    levels: int,
    from_corners: bool = False,
    guess: NDArray[np.float64] | None = None,
    max_corners: int = _TRACK_CORNERS,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]] | None:
    """Shi-Tomasi corners of ``src`` in ``where`` tracked into ``dst`` with pyramidal
    Lucas-Kanade (21x21 windows, ``levels`` levels) and back: (corners, their positions in
    ``dst``, the tracks whose way back returns within ``_TRACK_FB_PX``), or None where fewer
    than ``_TRACK_MIN`` corners or consistent tracks are found.

    Each track starts at rest; with ``from_corners`` the tracks back start at the corners
    themselves, and the tracks out where ``guess`` (a homography ``src -> dst``), if any,
    puts them.
    """
    corners = _corners(src, where, max_corners)
    if corners is None or len(corners) < _TRACK_MIN:
        return None
    lk: dict[str, Any] = {"winSize": (21, 21), "maxLevel": levels}
    start = back_start = None
    if from_corners:
        lk["flags"] = cv2.OPTFLOW_USE_INITIAL_FLOW
        guessed = corners if guess is None else cv2.perspectiveTransform(corners, guess)
        start = guessed.astype(np.float32)
        back_start = corners.copy()
    moved, ok_f, _ = cv2.calcOpticalFlowPyrLK(src, dst, corners, start, **lk)
    back, ok_b, _ = cv2.calcOpticalFlowPyrLK(dst, src, moved, back_start, **lk)
    p0, p1 = corners.reshape(-1, 2), moved.reshape(-1, 2)
    ok = (ok_f.ravel() == 1) & (ok_b.ravel() == 1)
    ok &= vector_length(back.reshape(-1, 2) - p0) < _TRACK_FB_PX
    if int(ok.sum()) < _TRACK_MIN:
        return None
    return cast(NDArray[np.float32], p0), cast(NDArray[np.float32], p1), ok


def _matched_homography(
    src: NDArray[np.uint8], dst: NDArray[np.uint8], where: NDArray[np.bool_]
) -> NDArray[np.float64] | None:
    """:func:`align_homography`'s first fit: ORB matches (cross-checked), RANSAC 3 px."""
    orb = cv2.ORB_create(_ALIGN_FEATURES)  # type: ignore[attr-defined]
    kp_a, des_a = orb.detectAndCompute(src, where.view(np.uint8) * np.uint8(255))
    kp_b, des_b = orb.detectAndCompute(dst, None)
    if des_a is None or des_b is None or len(kp_a) < _ALIGN_MIN_MATCHES:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(des_a, des_b)
    if len(matches) < _ALIGN_MIN_MATCHES:
        return None
    pa = np.array([kp_a[m.queryIdx].pt for m in matches], np.float32)
    pb = np.array([kp_b[m.trainIdx].pt for m in matches], np.float32)
    hom, inliers = cv2.findHomography(pa, pb, cv2.RANSAC, 3.0)
    if hom is None or inliers is None or int(inliers.sum()) < _ALIGN_MIN_MATCHES:
        return None
    return cast(NDArray[np.float64], hom)


def map_points(hom: NDArray[np.float64], xs: NDArray, ys: NDArray) -> NDArray[np.float32]:
    """(N, 2) float32: where the homography ``hom`` takes the points ``(xs, ys)``."""
    pts = np.stack([xs, ys], axis=1).astype(np.float32).reshape(-1, 1, 2)
    return cast(NDArray[np.float32], cv2.perspectiveTransform(pts, hom).reshape(-1, 2))


def homography_field(
    hom: NDArray[np.float64], box: tuple[int, int, int, int]
) -> NDArray[np.float32]:
    """``hom`` as a displacement field over ``box`` (y0, y1, x0, x1) of the frame it maps from."""
    y0, y1, x0, x1 = box
    pts = grid(y1 - y0, x1 - x0) + np.array([x0, y0], np.float32)
    moved = map_points(hom, pts[..., 0].ravel(), pts[..., 1].ravel()).reshape(pts.shape)
    return cast(NDArray[np.float32], (moved - pts).astype(np.float32))


def photometric_error(
    src: NDArray[np.uint8], dst: NDArray[np.uint8], flow: NDArray[np.float32], radius_px: int = 3
) -> NDArray[np.float32]:
    """Mean |src - dst pulled along flow| over a (2r+1)^2 box at each pixel, (h, w) float32."""
    h, w = src.shape[:2]
    at = grid(h, w) + flow
    pulled = cv2.remap(
        dst.astype(np.float32),
        at[..., 0],
        at[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    diff = np.abs(src.astype(np.float32) - pulled)
    x, y = at[..., 0], at[..., 1]
    diff[(x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)] = 255.0  # no support there
    return box_blur(diff, radius_px)


# OpenCV's DIS refuses images whose sides are both below 12 px (dis_flow.cpp: "either width or
# height >= 12"), and on an image with one short side it builds pyramid levels from the long one
# that the short one cannot hold: 120 x 8-12 px crash the process (segmentation fault), 480 x 12
# and 600 x 13 fail in resize (a 1024 x 64 clip's coarse flow at 256 x 16 crashed `remove`). A
# side below 32 px (a patch of 8 px at the finest level 2 of the fast presets) is padded with its
# edge pixels to 32 and the flow cropped back.
_DIS_MIN_SIDE_PX = 32


def _dis_calc(
    dis: Any,
    src: NDArray[np.uint8],
    dst: NDArray[np.uint8],
    init: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """``dis.calc``, started from ``init`` when given (OpenCV 4 needs ``setUseInitialFlow``;
    OpenCV 5 starts from any flow passed in)."""
    h, w = src.shape[:2]
    start = None if init is None else np.array(init, np.float32, order="C", copy=True)
    if hasattr(dis, "setUseInitialFlow"):
        dis.setUseInitialFlow(start is not None)
    if min(h, w) >= _DIS_MIN_SIDE_PX:
        return dis.calc(np.ascontiguousarray(src), np.ascontiguousarray(dst), start)
    pad = (0, max(0, _DIS_MIN_SIDE_PX - h), 0, max(0, _DIS_MIN_SIDE_PX - w))
    a = cv2.copyMakeBorder(src, *pad, cv2.BORDER_REPLICATE)
    b = cv2.copyMakeBorder(dst, *pad, cv2.BORDER_REPLICATE)
    padded = None if start is None else cv2.copyMakeBorder(start, *pad, cv2.BORDER_REPLICATE)
    return dis.calc(a, b, padded)[:h, :w]


_REMAP_COLS = 4096  # cv2.remap needs every side below SHRT_MAX, so point lists are folded into rows


def sample_points(
    img: NDArray,
    xs: NDArray[np.float32],
    ys: NDArray[np.float32],
    *,
    nearest: bool = False,
    cubic: bool = False,
    border_value: float = 0.0,
) -> NDArray:
    """Sample ``img`` at scattered points (bilinear unless ``nearest`` or ``cubic``).

    Args:
        img: (H, W) or (H, W, C) array, C <= 4, uint8 or float32.
        xs, ys: (N,) float32 absolute pixel coordinates (pixel centres at integers).
        nearest: nearest-neighbour instead of bilinear.
        cubic: bicubic instead of bilinear (keeps fine detail at sub-pixel offsets).
        border_value: value for points outside the image.

    Returns:
        (N,) or (N, C) array of ``img``'s dtype.
    """
    n = int(xs.shape[0])
    extra = img.shape[2:]
    if n == 0:
        return np.zeros((0, *extra), img.dtype)
    rows = -(-n // _REMAP_COLS)
    cols = -(-n // rows)  # as few padding points as the rows allow (fewer than ``rows``)
    mx = np.zeros((rows, cols), np.float32)
    my = np.zeros((rows, cols), np.float32)
    mx.reshape(-1)[:n] = xs
    my.reshape(-1)[:n] = ys
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    out = cv2.remap(img, mx, my, interp, borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
    return out.reshape(rows * cols, *extra)[:n]


def bbox(mask: NDArray[np.bool_], margin: int) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` of an (H, W) mask's True pixels grown by ``margin`` and clipped to the
    frame; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (
        max(0, int(rows[0]) - margin),
        min(h, int(rows[-1]) + margin + 1),
        max(0, int(cols[0]) - margin),
        min(w, int(cols[-1]) + margin + 1),
    )


def dilate(mask: NDArray[np.bool_], radius_px: int) -> NDArray[np.bool_]:
    """Grow a (H, W) bool mask by ``radius_px`` with a disc-shaped structuring element."""
    if radius_px <= 0 or not mask.any():
        return mask.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_px + 1, 2 * radius_px + 1))
    return cv2.dilate(mask.view(np.uint8), k).view(np.bool_)


def shrink_mask(mask: NDArray[np.bool_], size_wh: tuple[int, int]) -> NDArray[np.bool_]:
    """Downscale a (H, W) bool mask to ``(w, h)`` so that any covered cell stays True."""
    h, w = mask.shape
    if (w, h) == size_wh:
        return mask.copy()
    area = cv2.resize(mask.astype(np.float32), size_wh, interpolation=cv2.INTER_AREA)
    return area > 1e-6


_CROSS = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)


def neighbour_mean(
    img: NDArray[np.float32], dst: NDArray[np.float32] | None = None
) -> NDArray[np.float32]:
    """Mean of each pixel's 4 neighbours, (H, W) or (H, W, C<=4) float32 (edges replicated).

    ``dst`` (same shape and dtype as ``img``, not ``img`` itself) receives the result if given.
    """
    return cast(
        NDArray[np.float32], cv2.filter2D(img, -1, _CROSS, dst=dst, borderType=cv2.BORDER_REPLICATE)
    )


def box_blur(img: NDArray[np.float32], radius_px: int) -> NDArray[np.float32]:
    """Mean over a (2r+1)^2 box, (H, W) or (H, W, C<=4) float32 (edges replicated)."""
    k = 2 * radius_px + 1
    return cast(NDArray[np.float32], cv2.blur(img, (k, k), borderType=cv2.BORDER_REPLICATE))


def extend_crop(crop: NDArray, y0: int, x0: int, height: int, width: int) -> NDArray:
    """Place ``crop`` at ``(y0, x0)`` in a ``(height, width)`` canvas, edges replicated outwards.

    Args:
        crop: (h, w) or (h, w, C<=4) array lying inside the canvas.
        y0, x0: its top-left corner in the canvas.
        height, width: canvas size.

    Returns:
        (height, width[, C]) array of ``crop``'s dtype (``crop`` itself if it fills the canvas).
    """
    h, w = crop.shape[:2]
    if (y0, x0, h, w) == (0, 0, height, width):
        return crop
    return cv2.copyMakeBorder(crop, y0, height - y0 - h, x0, width - x0 - w, cv2.BORDER_REPLICATE)
