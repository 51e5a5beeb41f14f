"""Static overlays (logos, watermarks, burnt-in text): find them and un-blend them.

An overlay with opacity ``a(x)`` and colour ``W(x)``, the same in every frame, gives

    I_t(x) = a(x) W(x) + (1 - a(x)) J_t(x)

so where ``a < 1`` the background ``J_t`` is recovered by inverting the blend, not invented.

- :func:`detect_overlays` finds what stays put while the scene around it moves: edges present in
  (nearly) every sampled frame, at the same place and orientation, in frames where the scene at
  that place has moved. A static camera gives no such evidence, so nothing is found there.
- :class:`Unblender` estimates the blend per pixel from the video itself. The temporal engine's
  fill of the overlay region is an estimate ``F_t`` of ``J_t`` made from other frames; regressing
  ``F_t`` on the observed ``I_t`` (``F = m I + q``, so ``a = 1 - 1/m``) is unbiased by the fill's
  errors, because the regressor ``I_t`` is exact up to quantisation. The recovered
  ``(I_t - q') m`` and the fill are then combined by their expected errors, so where the overlay is
  nearly opaque (little of ``J`` left in ``I``) or the fit is unsure, the fill wins and no seam
  shows between the two.

This module is a leaf service: NumPy and OpenCV only, frames in, arrays out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.flow import to_gray


@dataclass(frozen=True)
class OverlayRegion:
    """One connected overlay found by :func:`detect_overlays`."""

    x: int
    y: int
    width: int
    height: int
    pixels: int
    opacity: float  # rough mean opacity (1 - temporal contrast inside / outside)


@dataclass(frozen=True)
class Detection:
    """What :func:`detect_overlays` found.

    Attributes:
        mask: (H, W) bool, the overlays' pixels (empty when nothing was found).
        opacity: (H, W) float32 rough per-pixel opacity estimate in [0, 1] (0 outside ``mask``).
        regions: one entry per connected overlay, largest first.
        frames: how many frames were sampled.
    """

    mask: NDArray[np.bool_]
    opacity: NDArray[np.float32]
    regions: tuple[OverlayRegion, ...]
    frames: int

    @property
    def found(self) -> bool:
        return bool(self.regions)


# Detection settings (measured on the shared clips; see bench/overlays.py).
_EDGE_MIN = 12.0  # Sobel magnitude (levels) of an edge
_CHANGED = 8  # grey levels (3x3 mean) by which a place must change between two samples
_GROW = 0.012  # that change spread over this share of the frame side (an opaque overlay's rim)
_COHERENCE = 0.6  # |sum of gradients| / sum of |gradients| over the changed samples
_MIN_MOVED = 0.4  # share of sample pairs in which the place must have changed
_SIDE_PX = 2  # distance of the two compared pixels from an edge
_SIDE_STD = 6.0  # the changing side must change by this much (std of grey levels)
_DAMP_OPAQUE = 0.25  # a side this still next to a changing one: an opaque overlay
_DAMP_MAX = 0.85  # a damped side (semi-transparent overlay) ...
_SIDE_CORR = 0.6  # ... that follows its neighbour in time
_MIN_OPACITY = 0.15  # an overlay damps the scene's change inside it by at least this share
_MIN_AREA = 0.002  # smallest overlay, as a share of the frame
_ISOTROPY = 0.12  # smallest λmin/λmax of an overlay's edge structure tensor (not one straight edge)


def _sobel(grey: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return gx.astype(np.float32, copy=False), gy.astype(np.float32, copy=False)


def detect_overlays(
    frames: Iterable[NDArray[np.uint8]],
    *,
    max_samples: int = 48,
    n_frames: int | None = None,
) -> Detection:
    """Find static overlays in a clip.

    Args:
        frames: (H, W, 3) uint8 RGB frames in order (the whole clip; only a sample is analysed).
        max_samples: frames analysed at most, spread evenly over ``n_frames``.
        n_frames: the clip's length when known (else every ``frames`` item is kept, then thinned).

    Returns:
        The overlays' mask, a rough opacity map and one :class:`OverlayRegion` per overlay.
    """
    step = max(1, -(-n_frames // max_samples)) if n_frames else 1
    samples: list[NDArray[np.uint8]] = []
    for i, rgb in enumerate(frames):
        if i % step == 0:
            samples.append(rgb)
            if n_frames is None and len(samples) > 2 * max_samples:
                samples = samples[::2]
                step *= 2
    if n_frames is None and len(samples) > max_samples:
        samples = samples[:: -(-len(samples) // max_samples)]
    if len(samples) < 3:
        h, w = samples[0].shape[:2] if samples else (0, 0)
        return Detection(np.zeros((h, w), bool), np.zeros((h, w), np.float32), (), len(samples))
    return _detect(samples)


def _detect(samples: list[NDArray[np.uint8]]) -> Detection:
    h, w = samples[0].shape[:2]
    greys = [to_gray(s) for s in samples]
    grow = max(3, round(_GROW * max(h, w))) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow))
    # Per pixel, over the samples in which the scene at that place changed: the sum of the
    # gradient vectors (per channel) and of their lengths. A scene edge that moves away leaves
    # vectors that cancel; an overlay's edge adds up.
    gsum = np.zeros((h, w, 3, 2), np.float32)
    msum = np.zeros((h, w, 3), np.float32)
    moved_n = np.zeros((h, w), np.float32)
    change = np.zeros((h, w), np.float32)
    for k in range(1, len(greys)):
        diff = cv2.absdiff(greys[k], greys[k - 1])
        change += diff
        local = cv2.blur(diff, (3, 3))
        moved = (cv2.dilate(local, kernel) > _CHANGED).astype(np.float32)
        moved_n += moved
        rgb = samples[k].astype(np.float32)
        for c in range(3):
            gx, gy = _sobel(np.ascontiguousarray(rgb[..., c]))
            gsum[..., c, 0] += gx * moved
            gsum[..., c, 1] += gy * moved
            msum[..., c] += np.hypot(gx, gy) * moved
    coherent = np.hypot(gsum[..., 0], gsum[..., 1])  # (H, W, 3)
    ratio = (coherent / np.maximum(msum, 1e-3)).max(axis=-1)
    edge = (ratio >= _COHERENCE) & (moved_n >= _MIN_MOVED * (len(greys) - 1))
    edge &= coherent.max(axis=-1) >= _EDGE_MIN * moved_n
    orient = _orientation(gsum)
    edge &= _blend_evidence(np.stack(greys), gsum, edge)
    mean_change = (change / (len(greys) - 1)).astype(np.float32)
    return _regions(edge, mean_change, orient, h, w, len(samples))


def _blend_evidence(
    greys: NDArray[np.uint8], gsum: NDArray[np.float32], edge: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """Keep the edge pixels across which the two sides behave like an overlay over a scene.

    Two pixels ``_SIDE_PX`` either side of the edge (along its summed gradient) are compared over
    the samples. Across an overlay's edge one side is the other damped: constant when the overlay
    is opaque, ``(1 - a)`` times its neighbour's change when not, and following it in time (the
    same scene is under both). Across a scene's own edge (a swaying person, a moving object's
    outline) the two sides are unrelated or change alike.
    """
    ys, xs = np.nonzero(edge)
    keep = np.zeros_like(edge)
    if ys.size == 0:
        return keep
    _n, h, w = greys.shape
    mag = np.hypot(gsum[ys, xs, :, 0], gsum[ys, xs, :, 1])
    best = mag.argmax(axis=-1)
    g = gsum[ys, xs, best]
    unit = g / np.maximum(np.hypot(g[:, 0], g[:, 1]), 1e-6)[:, None]
    xa = np.clip(np.rint(xs + _SIDE_PX * unit[:, 0]), 0, w - 1).astype(int)
    ya = np.clip(np.rint(ys + _SIDE_PX * unit[:, 1]), 0, h - 1).astype(int)
    xb = np.clip(np.rint(xs - _SIDE_PX * unit[:, 0]), 0, w - 1).astype(int)
    yb = np.clip(np.rint(ys - _SIDE_PX * unit[:, 1]), 0, h - 1).astype(int)
    a = greys[:, ya, xa].astype(np.float32)  # (n, P)
    b = greys[:, yb, xb].astype(np.float32)
    a -= a.mean(axis=0)
    b -= b.mean(axis=0)
    sa, sb = np.sqrt((a * a).mean(axis=0)), np.sqrt((b * b).mean(axis=0))
    lo, hi = np.minimum(sa, sb), np.maximum(sa, sb)
    damp = lo / np.maximum(hi, 1e-3)
    corr = (a * b).mean(axis=0) / np.maximum(sa * sb, 1e-3)
    opaque = (damp < _DAMP_OPAQUE) & (hi > _SIDE_STD)
    blended = (corr > _SIDE_CORR) & (damp < _DAMP_MAX) & (hi > _SIDE_STD)
    keep[ys, xs] = opaque | blended
    return keep


def _orientation(
    gsum: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Doubled-angle unit vectors of each pixel's summed gradient (strongest channel)."""
    mag = np.hypot(gsum[..., 0], gsum[..., 1])
    best = mag.argmax(axis=-1)[..., None, None]
    g = np.take_along_axis(gsum, np.broadcast_to(best, (*gsum.shape[:2], 1, 2)), axis=2)[:, :, 0]
    gx, gy = g[..., 0], g[..., 1]
    m2 = np.maximum(gx * gx + gy * gy, 1e-6)
    return ((gx * gx - gy * gy) / m2).astype(np.float32), (2 * gx * gy / m2).astype(np.float32)


def _regions(
    edge: NDArray[np.bool_],
    change: NDArray[np.float32],
    orient: tuple[NDArray[np.float32], NDArray[np.float32]],
    h: int,
    w: int,
    n: int,
) -> Detection:
    """Group persistent edges into overlays, fill their insides, drop what is not an overlay."""
    close = max(3, round(0.012 * max(h, w))) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close))
    joined = cv2.morphologyEx(edge.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    mask = np.zeros((h, w), bool)
    opacity = np.zeros((h, w), np.float32)
    regions = []
    c2, s2 = orient
    for i in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < _MIN_AREA * h * w:
            continue
        comp = labels[y : y + bh, x : x + bw] == i
        e = comp & edge[y : y + bh, x : x + bw]
        # Structure of the edges: an overlay has edges of many orientations.
        cc = c2[y : y + bh, x : x + bw][e]
        ss = s2[y : y + bh, x : x + bw][e]
        if cc.size == 0:
            continue
        r = np.hypot(cc.sum(), ss.sum()) / max(np.hypot(cc, ss).sum(), 1e-6)
        isotropy = (1 - r) / (1 + r)
        if isotropy < _ISOTROPY:
            continue
        # Fill enclosed holes whose content changes less than the ring around the overlay
        # (the overlay's inside: constant if opaque, damped by (1 - a) if not).
        filled = _fill_inside(comp, change[y : y + bh, x : x + bw])
        ring = cv2.dilate(comp.astype(np.uint8), kernel) > 0
        ring &= ~comp
        outside = float(np.median(change[y : y + bh, x : x + bw][ring])) if ring.any() else 0.0
        inside = float(np.median(change[y : y + bh, x : x + bw][filled]))
        op = float(np.clip(1 - inside / max(outside, 1e-3), 0, 1))
        if op < _MIN_OPACITY:  # the scene changes as much inside as around it: no overlay
            continue
        mask[y : y + bh, x : x + bw] |= filled
        opacity[y : y + bh, x : x + bw][filled] = np.clip(
            1 - change[y : y + bh, x : x + bw][filled] / max(outside, 1e-3), 0, 1
        )
        regions.append(OverlayRegion(x, y, bw, bh, int(filled.sum()), op))
    regions.sort(key=lambda r: -r.pixels)
    return Detection(mask, opacity, tuple(regions), n)


def _fill_inside(comp: NDArray[np.bool_], change: NDArray[np.float32]) -> NDArray[np.bool_]:
    """``comp`` plus its enclosed holes whose temporal change is below the component's rim."""
    padded = np.pad(comp.astype(np.uint8), 1)
    holes = padded.copy()
    cv2.floodFill(holes, None, (0, 0), 1)
    enclosed = (holes == 0)[1:-1, 1:-1]
    if not enclosed.any():
        return comp
    count, labels = cv2.connectedComponents(enclosed.astype(np.uint8), connectivity=4)
    out = comp.copy()
    rim = float(np.median(change[comp])) if comp.any() else 0.0
    for i in range(1, count):
        hole = labels == i
        if float(np.median(change[hole])) <= rim * 1.25:
            out |= hole
    return out


_MIN_FIT_R2 = 0.3  # squared correlation of frame and fill below which un-blending stays off
_FIT_R2_RAMP = 0.4  # ... and fully on from 0.3 + 0.4


class Unblender:
    """Recovers the background under a static semi-transparent overlay, frame by frame.

    Feed it each frame with the video engine's fill of the overlay region (:meth:`observe`), then
    :meth:`apply` returns the fill with the overlay un-blended where that is the better estimate.
    Only the region's bounding box is stored (five sums per pixel and channel), so memory does
    not grow with the clip. Per pixel, ``F = m I + q`` is fitted over the frames seen (slope
    pooled over the channels, one intercept per channel); ``a = 1 - 1/m``.

    Args:
        region: (H, W) bool, where the overlay is (the un-blending stays inside it).
        max_opacity: above this estimated opacity the fill is kept (the background left in the
            frame is too faint to recover); un-blending fades out over the 0.1 below it.
        noise: the frames' noise (grey levels, quantisation and compression), amplified by ``m``.
    """

    def __init__(
        self, region: NDArray[np.bool_], *, max_opacity: float = 0.9, noise: float = 1.0
    ) -> None:
        ys, xs = np.nonzero(region)
        if ys.size == 0:
            raise ValueError("the overlay region is empty")
        self.box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1)
        y0, y1, x0, x1 = self.box
        self.region = region[y0:y1, x0:x1]
        self.max_opacity = max_opacity
        self.noise = noise
        shape = (y1 - y0, x1 - x0, 3)
        self.n = 0
        self._sums = {k: np.zeros(shape, np.float64) for k in ("i", "f", "ii", "if", "ff")}
        self._fit: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]] | None = (
            None
        )

    def _crop(self, rgb: NDArray[np.uint8]) -> NDArray[np.float64]:
        y0, y1, x0, x1 = self.box
        return rgb[y0:y1, x0:x1].astype(np.float64)

    def observe(self, rgb: NDArray[np.uint8], filled: NDArray[np.uint8]) -> None:
        """Add one frame (as decoded) and the engine's fill of it to the fit."""
        i, f = self._crop(rgb), self._crop(filled)
        s = self._sums
        s["i"] += i
        s["f"] += f
        s["ii"] += i * i
        s["if"] += i * f
        s["ff"] += f * f
        self.n += 1
        self._fit = None

    def fit(self) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        """Per pixel of the box: slope ``m`` (H, W), intercepts ``q`` (H, W, 3) and the weight
        (H, W) of the un-blended estimate against the fill."""
        if self._fit is not None:
            return self._fit
        n = max(self.n, 1)
        s = self._sums
        mi, mf = s["i"] / n, s["f"] / n
        vi = np.maximum(s["ii"] / n - mi * mi, 0.0)
        cif = s["if"] / n - mi * mf
        vf = np.maximum(s["ff"] / n - mf * mf, 0.0)
        vi_p = vi.sum(axis=-1)
        m_raw = cif.sum(axis=-1) / np.maximum(vi_p, 1e-9)
        m_cap = 1.0 / (1.0 - self.max_opacity)
        m = np.clip(m_raw, 1.0, m_cap)
        q = mf - m[..., None] * mi
        resid = np.maximum((vf - 2 * m[..., None] * cif + (m * m)[..., None] * vi).mean(-1), 0.0)
        # Expected squared error of the un-blended value: amplified noise, and the fit's own
        # uncertainty (intercept and slope from n frames).
        var_u = (m * self.noise) ** 2 + resid * 2.0 / n
        w = resid / np.maximum(resid + var_u, 1e-9)
        a = 1.0 - 1.0 / m
        w *= np.clip((self.max_opacity - a) / 0.1, 0.0, 1.0)
        # Where the frame does not follow the fill (an overlay that changes, like a running
        # timestamp, or a fill that is wrong), the static blend model does not hold: fill.
        rho2 = cif.sum(-1) ** 2 / np.maximum(vi_p * vf.sum(-1), 1e-9)
        w *= np.clip((rho2 - _MIN_FIT_R2) / _FIT_R2_RAMP, 0.0, 1.0)
        w[vi_p < 3 * self.noise**2] = 0.0  # the frame here never changed: nothing to fit
        w *= self.region
        self._fit = (m.astype(np.float32), q.astype(np.float32), w.astype(np.float32))
        return self._fit

    @property
    def opacity(self) -> NDArray[np.float32]:
        """Estimated opacity per pixel of the box (0 where nothing could be fitted)."""
        m, _, w = self.fit()
        return np.where(w > 0, 1.0 - 1.0 / m, 0.0).astype(np.float32)

    def apply(self, rgb: NDArray[np.uint8], filled: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``filled`` with the region replaced by the blend of un-blended frame and fill."""
        m, q, w = self.fit()
        y0, y1, x0, x1 = self.box
        i, f = self._crop(rgb), self._crop(filled)
        j = m[..., None] * i + q
        out = filled.copy()
        mix = w[..., None] * j + (1.0 - w[..., None]) * f
        out[y0:y1, x0:x1] = np.clip(np.rint(mix), 0, 255).astype(np.uint8)
        return out
