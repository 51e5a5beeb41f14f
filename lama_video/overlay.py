"""Static overlays (logos, watermarks, burnt-in text): find them and un-blend them.

An overlay with opacity ``a(x)`` and colour ``W(x)``, the same in every frame, gives

    I_t(x) = a(x) W(x) + (1 - a(x)) J_t(x)

so where ``a < 1`` the background ``J_t`` is recovered by inverting the blend, not invented.

- :func:`detect_overlays` finds what stays put while the scene around it moves: edges whose
  gradients add up over the sampled frames in which the scene at that place changed, where one
  side of the edge is still (opaque) or follows the other, damped (semi-transparent). A found
  overlay is those edges plus the still places they bound (a thick stroke's band between its two
  rims, a solid logo's inside). Small opaque text over a moving scene, whose edges' closing
  takes in the scene between its letters, is also found by its pixels: still in every sample
  while the scene a pixel or two beside them moves. A still camera over a still scene gives no
  such evidence, so nothing is found there.
- :class:`Unblender` fits the blend from the video itself: the temporal engine's fill of the
  overlay region, made from other frames, stands in for ``J_t``. Each frame is then recovered as
  ``(I_t - a W) / (1 - a)`` and combined with the fill by their expected errors, so where the
  overlay is nearly opaque (little of ``J`` left in ``I``) or the fit is unsure the fill wins, and
  no seam shows between the two.

This module is a leaf service: NumPy and OpenCV only, frames in, arrays out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.flow import resize, to_gray
from lama_video.qc import QcInfo

T = TypeVar("T", bound=np.generic)


@dataclass(frozen=True)
class OverlayRegion:
    """One connected overlay found by :func:`detect_overlays`."""

    x: int
    y: int
    width: int
    height: int
    pixels: int
    opacity: float  # rough mean opacity (1 - temporal contrast inside / outside, or the gain
    # its edges agree on for a faint one; merged regions: their pixels' weighted mean)


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

    @classmethod
    def empty(cls, height: int, width: int, frames: int) -> Detection:
        """Nothing found in ``frames`` sampled frames of ``height`` x ``width``."""
        return cls(
            np.zeros((height, width), bool), np.zeros((height, width), np.float32), (), frames
        )


# Detection settings (measured on the shared clips; see bench/overlays.py).
_EDGE_MIN = 12.0  # Sobel magnitude (levels) of an edge
_CHANGED = 8  # grey levels (3x3 mean) by which a place must change between two samples
_SLOW_GAP_FRAMES = 4  # a second look at opaque overlays compares samples this many frames apart
_SLOW_PRESENT = 0.9  # ... and takes only edges that are there in this share of all samples
_GROW = 0.012  # that change spread over this share of the frame side (an opaque overlay's rim)
_COHERENCE = 0.6  # |sum of gradients| / sum of |gradients| over the changed samples
_MIN_MOVED = 0.4  # share of sample pairs in which the place must have changed
_SIDE_PX = 2  # distance of the two compared pixels from an edge
_SIDE_STD = 6.0  # the changing side must change by this much (std of grey levels)
_STILL_STD = 2.5  # an opaque overlay's side is still but for noise (a standing person is not)
_DAMP_OPAQUE = 0.25  # a side this still next to a changing one: an opaque overlay
_DAMP_MAX = 0.85  # a damped side (semi-transparent overlay) ...
_SIDE_CORR = 0.6  # ... that follows its neighbour in time
_MIN_OPACITY = 0.15  # an overlay damps the scene's change inside it by at least this share
_HOLE_DAMP = 0.85  # an enclosed hole changing less than this share of the outside is inside
_BAND_DAMP = 0.25  # a thick stroke's band between its rims changes less than this share ...
_BODY_REACH = 3  # ... and lies within this many closing widths of its rims' box ...
_BOUNDED_SHARE = 0.25  # ... with at least this share of its outline next to the rims
_RIM_ON_EDGES = 0.7  # share of a found region's rim that lies on persistent edges
_MIN_AREA = 0.002  # smallest overlay, as a share of the frame
_ISOTROPY = 0.12  # smallest λmin/λmax of an overlay's edge structure tensor (not one straight edge)
_BLEND_GAIN_IQR = 0.15  # a faint overlay's edges agree on the gain (1 - a) within this IQR ...
_BLEND_GREY_IQR = 20.0  # ... and on its grey level within this IQR (levels)
_MIN_BLEND_EDGES = 40  # edge pixels needed to say so
_RIM_ON_EDGES_FAINT = 0.5  # the same for a faint overlay whose edges agree on one blend
_FAINT_STEPS = 3  # closings' widths by which a faint overlay's body grows into damped places
_TRIM_DAMP = 0.85  # a found region keeps the pixels changing less than this share of the scene ...
_FRINGE_SIGMA_PX = 4.0  # ... grown by a pixel into those changing less than the scene within this
_OPAQUE_BODY = 0.9  # a region found from the opaque edges alone damps the scene by this much
_AGREE_OPACITY = 0.5  # a region whose edges agree on one blend this opaque (not a faint one) ...
_AGREE_TOL = 0.15  # ... within this of its body's damping needs only _RIM_ON_EDGES_FAINT
_STRONG_DAMP = 0.35  # an edge whose still side changes less than this share of the other's ...
_STRONG_CORR = 0.3  # ... and follows it this much is strongly damped (an 80 % overlay's, mostly)
_SEMI_GAIN = 0.1  # a found region whose edges' median gain is at least this is semi-transparent
_REGROW_HOLD = 0.9  # a wider region replaces a found one when it holds this share of it
_RECUR_SPREAD = 10.0  # an overlay whose still pixels keep its colour within this (levels, RGB) ...
_RECUR_TOL = 8.0  # ... also takes the pixels near it that show that colour (within this, or 3x
_RECUR_SAMPLES = 2  # the overlay's own spread) in at least this many samples (changing digits)
_LINE_ASPECT = 2.0  # a found region this elongated is a line (of text)
_RECUR_REACH = 4  # ... within this many closing widths of the found region (a line: along it)
_PIXEL_STILL = 3.0  # an opaque overlay's pixel: its colour's std over the samples (each channel)
_PIXEL_MOVING = 8.0  # a place whose std is above this ...
_PAIR_CHANGE = 2.5  # ... and whose mean change between consecutive samples is at least this moves
_STILL_RING = 0.6  # still pixels whose ring (2 px out) moves this much are an overlay's ...
_STILL_RIM = 0.8  # ... grouped by a closing, and the group's outer rim moves this much
_STILL_MAX_AREA = 0.1  # no larger than this share of the frame
_STILL_MIN_SAMPLES = 24  # stillness means something from this many samples on (20 frames: finds)
_PAIR_LEVELS = 4  # a place changed between two samples by more than this (3x3 mean, grey) ...
_PAIR_SHARE = 0.25  # ... in at least this share of the pairs, at the median of a still group's rim
_STILL_HOLDS = 0.4  # a found region this much still pixels is cut to them (0.3-0.5 alike)


def detect_overlays(
    frames: Iterable[NDArray[np.uint8]],
    *,
    max_samples: int = 48,
    n_frames: int | None = None,
    max_side_px: int = 1280,
) -> Detection:
    """Find static overlays in a clip.

    Args:
        frames: (H, W, 3) uint8 RGB frames in order (the whole clip; only a sample is analysed).
        max_samples: frames analysed at most, spread evenly over ``n_frames``.
        n_frames: the clip's length when known (else every ``frames`` item is kept, then thinned).
        max_side_px: larger frames are analysed at this longest side (``INTER_AREA``) and what
            is found is scaled back up: the samples' memory and the work stay bounded, and the
            edge and change thresholds, which are in grey levels per pixel, see an overlay about
            as sharp as at the sizes they were measured at. A logo burnt into the sample clip
            scaled up to 4000x3000: analysed at full size, 3.9 GB and 24 s, and nothing found;
            at 1280 px, 0.76 GB and 3.1 s, coverage 0.996 at 1.21x its area.

    Returns:
        The overlays' mask, a rough opacity map and one :class:`OverlayRegion` per overlay, at
        the frames' own size.
    """
    step = max(1, -(-n_frames // max_samples)) if n_frames else 1
    samples: list[NDArray[np.uint8]] = []
    full: tuple[int, int] | None = None  # (h, w) of the frames
    work: tuple[int, int] | None = None  # (w, h) analysed, when smaller
    for i, rgb in enumerate(frames):
        if full is None:
            full = rgb.shape[:2]
            scale = max_side_px / max(full)
            if scale < 1:
                work = (max(8, round(full[1] * scale)), max(8, round(full[0] * scale)))
        if i % step == 0:
            samples.append(rgb if work is None else resize(rgb, work))
            if n_frames is None and len(samples) > 2 * max_samples:
                samples = samples[::2]
                step *= 2
    if n_frames is None and len(samples) > max_samples:
        samples = samples[:: -(-len(samples) // max_samples)]
    if len(samples) < 3:
        h, w = full or (0, 0)
        return Detection.empty(h, w, len(samples))
    found = _detect(samples, step if n_frames else None)
    return found if work is None or full is None else _scaled(found, *full)


def _scaled(found: Detection, height: int, width: int) -> Detection:
    """``found`` (at a working size) at the frames' own size."""
    h, w = found.mask.shape
    sy, sx = height / h, width / w
    size = (width, height)
    mask = resize(found.mask.astype(np.float32), size) > 0.3  # a 1-px stroke: a third of a pixel
    opacity = resize(found.opacity, size).astype(np.float32)
    opacity[~mask] = 0.0
    regions = tuple(
        OverlayRegion(
            int(r.x * sx),
            int(r.y * sy),
            min(width, int(np.ceil((r.x + r.width) * sx))) - int(r.x * sx),
            min(height, int(np.ceil((r.y + r.height) * sy))) - int(r.y * sy),
            round(r.pixels * sx * sy),
            r.opacity,
        )
        for r in found.regions
    )
    return Detection(mask, opacity, regions, found.frames)


def _detect(samples: list[NDArray[np.uint8]], step: int | None = None) -> Detection:
    h, w = samples[0].shape[:2]
    greys = [to_gray(s) for s in samples]
    stack = np.stack(greys)
    gap = _pair_gap(len(samples), step)
    passes = _persistent_edges(samples, greys, (1, gap) if gap > 1 else (1,))
    edge, gsum, mean_change, orient, changed = passes[0]
    kept, gain, grey, sides, strong = _blend_evidence(stack, gsum, edge)
    edge &= kept
    blend = (gain, grey, sides)
    found = _with_opaque(
        _regions(edge, mean_change, orient, h, w, len(samples), blend),
        _regions(edge & (gain < _DAMP_OPAQUE), mean_change, orient, h, w, len(samples), blend),
    )
    if len(passes) > 1:
        found = _with_opaque(found, _slow_opaque(stack, *passes[1][:4]))
    still = _still_opaque(samples, mean_change, changed)
    found = _with_opaque(_tightened(found, still), still)
    if not found.found:
        return found
    completed = _with_recurring(found, samples, mean_change)
    wide = _regions(edge | strong, mean_change, orient, h, w, len(samples), blend)
    regrown = _regrown(found, wide, np.where(edge, gain, np.nan))
    if regrown is None:
        return completed
    return _united(completed, _with_recurring(regrown, samples, mean_change))


def _still_opaque(
    samples: list[NDArray[np.uint8]], change: NDArray[np.float32], changed: NDArray[np.float32]
) -> Detection:
    """Opaque overlays found by their pixels, not their edges: still amid a moving scene.

    An opaque overlay's pixels keep one colour in every sample (std below ``_PIXEL_STILL`` in
    each channel), while the scene a pixel or two beyond its outline moves (std above
    ``_PIXEL_MOVING`` and a mean change of at least ``_PAIR_CHANGE`` between consecutive
    samples). Small text over a panning scene is mostly rim: its edges' closing takes in the
    moving scene between the letters and fails the damping test (tennis's opaque text at
    432x240 damps its region's change by 0.42, against the 0.9 asked). Here each connected
    still part whose ring 2 px out moves by ``_STILL_RING`` is a seed; seeds joined by the edge
    detector's closing are one overlay, grown by a pixel into the places changing less than
    ``_TRIM_DAMP`` times the scene around them (its anti-aliased rim; the scene's change
    measured off the still pixels and the pixels next to them, so the middle of a large text is
    judged against the scene between its letters, not a default), when it is at least
    ``_MIN_AREA`` and at most ``_STILL_MAX_AREA`` of the frame, does not touch the frame's border
    (letterbox and pillarbox bars are still beside a moving picture too) and its outer rim moves
    by ``_STILL_RIM``.

    The change between consecutive samples is what tells an overlay from a still patch in a
    slow pan: a uniform patch panned by 0.2-0.5 px a frame has a still inside whose ring drifts
    (std 10-20) but changes by 0.7-1.9 levels from one sample to the next, where the scene beside
    tennis's text changes by 4-11. ``_PAIR_CHANGE`` sits on that plateau: from 2.0 to 3.5 the
    same overlays are found on ``bench/overlays.py --detect-only`` and nothing on nine slow pans
    of three sample-clip frames; at 1.5 two pans give a find, at 4.0 tennis's text is lost.
    And the rim must have changed in a good share of the pairs (``_PAIR_SHARE`` at its median,
    by more than ``_PAIR_LEVELS``), not in a few: a film leader's sweep passes over its static
    rings once a second (the rims changed in 7-16 % of the pairs; 36-92 % beside the bench's
    texts over moving scenes). From ``_STILL_MIN_SAMPLES`` samples on only (on 20-frame windows of
    a shared clip, a kitten's, it found five things).

    ``change``: the mean grey change of consecutive samples; ``changed``: the share of those
    pairs in which each place changed by more than ``_PAIR_LEVELS`` (:func:`_persistent_edges`).
    """
    h, w = samples[0].shape[:2]
    n = len(samples)
    empty = Detection.empty(h, w, n)
    if n < _STILL_MIN_SAMPLES:
        return empty
    sd = _colour_std(samples)
    still = sd < _PIXEL_STILL
    if not still.any():
        return empty
    moving = (sd > _PIXEL_MOVING) & (change >= _PAIR_CHANGE)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(still.view(np.uint8), connectivity=8)
    # Each still part's ring 2 px out (Chebyshev), its pixels given to the part within reach
    # (the higher label where two are).
    reach = cv2.dilate(labels.astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.int32)
    # The still parts and the pixels next to them (part overlay, part scene) are not the scene.
    off = ~_grown(still)
    ring = (reach > 0) & off
    total = np.bincount(reach[ring], minlength=count)
    on = np.bincount(reach[ring & moving], minlength=count)
    keep = (on >= _STILL_RING * np.maximum(total, 1)) & (total > 0)
    keep &= stats[:, cv2.CC_STAT_AREA] <= _STILL_MAX_AREA * h * w
    keep[0] = False
    seeds = keep[labels]
    if not seeds.any():
        return empty
    close = _closing_px(h, w)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close))
    joined = cv2.morphologyEx(seeds.view(np.uint8), cv2.MORPH_CLOSE, kernel)
    count, groups, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    mask = np.zeros((h, w), bool)
    regions = []
    for i in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area > _STILL_MAX_AREA * h * w:
            continue
        y0, y1, x0, x1 = max(0, y - 3), min(h, y + bh + 3), max(0, x - 3), min(w, x + bw + 3)
        group = (groups[y0:y1, x0:x1] == i) & seeds[y0:y1, x0:x1]
        if group.sum() < _MIN_AREA * h * w:
            continue
        sd_b = sd[y0:y1, x0:x1]
        around = _local_change(sd_b, off[y0:y1, x0:x1], _FRINGE_SIGMA_PX, _PIXEL_MOVING)
        body = group | (_grown(group) & (sd_b < _TRIM_DAMP * around))
        if (y0 == 0 and body[0].any()) or (y1 == h and body[-1].any()):
            continue
        if (x0 == 0 and body[:, 0].any()) or (x1 == w and body[:, -1].any()):
            continue
        rim = _grown(_grown(body)) & ~_grown(body) & ~_enclosed(body)
        if not rim.any() or moving[y0:y1, x0:x1][rim].mean() < _STILL_RIM:
            continue
        if float(np.median(changed[y0:y1, x0:x1][rim])) < _PAIR_SHARE:
            continue  # something passed by once (a film leader's sweep), not a moving scene
        mask[y0:y1, x0:x1] |= body
        regions.append(_region(body, y0, x0, int(body.sum()), 1.0))
    if not regions:
        return empty
    regions.sort(key=lambda r: -r.pixels)
    return Detection(mask, mask.astype(np.float32), tuple(regions), n)


def _tightened(found: Detection, still: Detection) -> Detection:
    """``found`` with each region that ``still`` covers for the most part cut to ``still``'s pixels.

    Where the edges find an opaque text over a moving scene, their closing and a pixel all round
    each rim take in some of the scene between and around the letters (1.40-1.47x the text's
    area on four of the bench's opaque overlays at 432x240, against the 1.5x asked); the still
    pixels, grown by their anti-aliased rim, hug the letters. A region at least
    ``_STILL_HOLDS`` of whose pixels are among them keeps only those (a semi-transparent
    overlay's pixels are not still, so it is left as it is; a running timestamp's changing digits,
    cut here, come back with the completion by recurring colour, :func:`_with_recurring`).
    """
    if not found.found or not still.found:
        return found
    mask = found.mask.copy()
    boxes = np.zeros(mask.shape, np.int16)  # how many regions' boxes hold each pixel
    for r in found.regions:
        boxes[r.y : r.y + r.height, r.x : r.x + r.width] += 1
    regions = []
    for r in found.regions:
        box = np.s_[r.y : r.y + r.height, r.x : r.x + r.width]
        body = found.mask[box]
        kept = body & still.mask[box]
        if kept.sum() < _STILL_HOLDS * body.sum():
            regions.append(r)
            continue
        # Pixels in another region's box too (boxes may overlap) may be that region's: kept.
        kept |= body & (boxes[box] > 1)
        mask[box] &= kept | ~body
        regions.append(_region(kept, r.y, r.x, int(kept.sum()), r.opacity))
    regions.sort(key=lambda r: -r.pixels)
    opacity = np.where(mask, found.opacity, 0.0).astype(np.float32)
    return Detection(mask, opacity, tuple(regions), found.frames)


def _colour_std(samples: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """Per pixel, the largest of its three channels' standard deviations over ``samples``."""
    h, w = samples[0].shape[:2]
    sums = [np.zeros((h, w), np.float32) for _ in range(3)]
    squares = [np.zeros((h, w), np.float32) for _ in range(3)]
    for sample in samples:
        for c, plane in enumerate(cv2.split(sample)):
            cv2.accumulate(plane, sums[c])
            cv2.accumulateSquare(plane, squares[c])
    n = float(len(samples))
    var = [np.maximum(q / n - (s / n) ** 2, 0.0) for s, q in zip(sums, squares, strict=True)]
    return cast(NDArray[np.float32], np.sqrt(np.maximum.reduce(var)).astype(np.float32))


#: Summed gradients per channel: the x components' planes and the y components'.
_Gradients = tuple[list[NDArray[np.float32]], list[NDArray[np.float32]]]


def _persistent_edges(
    samples: list[NDArray[np.uint8]], greys: list[NDArray[np.uint8]], gaps: tuple[int, ...]
) -> list[
    tuple[
        NDArray[np.bool_],
        _Gradients,
        NDArray[np.float32],
        tuple[NDArray[np.float32], NDArray[np.float32]],
        NDArray[np.float32],
    ]
]:
    """Edges that stay put while the scene around them changes, for samples ``gap`` apart.

    Per pixel, over the sample pairs (each sample and the one ``gap`` before it) in which the
    scene at that place changed: the sum of the gradient vectors (per channel) and of their
    lengths. A scene edge that moves away leaves vectors that cancel; an overlay's edge adds up.
    Each sample's gradients are computed once for all ``gaps``. For a gap above 1 an edge must
    also be there in ``_SLOW_PRESENT`` of all samples, not only in those whose pair changed: a
    scene edge that drifts slowly past a place changes it only while it is near, so counted
    over those pairs alone it looks as steady as an overlay's (the edges of a uniform patch
    in a slow pan, 0.3 px a frame, compared 4 frames apart, were found as an opaque overlay).

    Returns:
        Per gap: the persistent edges (before the blend test), the summed gradients,
        the mean absolute grey change of a pair, the gradients' orientation
        (:func:`_orientation`) and the share of the pairs in which the place's 3x3 mean grey
        level changed by more than ``_PAIR_LEVELS`` (:func:`_still_opaque`).
    """
    h, w = greys[0].shape
    grow = max(3, round(_GROW * max(h, w))) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow))
    # One contiguous plane per channel and component, summed in place by OpenCV under the
    # "changed" mask (4-D strided NumPy updates cost 5x more at 854x480).
    sums = [[[np.zeros((h, w), np.float32) for _ in range(3)] for _ in range(3)] for _ in gaps]
    moved_n = [np.zeros((h, w), np.float32) for _ in gaps]
    change = [np.zeros((h, w), np.float32) for _ in gaps]
    changed_n = [np.zeros((h, w), np.float32) for _ in gaps]
    slow = max(gaps) > 1
    present = np.zeros((h, w), np.float32)  # samples with an edge at the place (slow look only)
    for k in range(min(gaps), len(greys)):
        masks = []
        for i, gap in enumerate(gaps):
            if k < gap:
                continue
            diff = cv2.absdiff(greys[k], greys[k - gap])
            cv2.accumulate(diff, change[i])
            local = cv2.blur(diff, (3, 3))
            cv2.accumulate((local > _PAIR_LEVELS).view(np.uint8), changed_n[i])
            moved = (cv2.dilate(local, kernel) > _CHANGED).astype(np.uint8)
            cv2.accumulate(moved, moved_n[i])
            masks.append((i, moved))
        top = np.zeros((h, w), np.float32) if slow else None  # the strongest channel's length
        for c, plane in enumerate(cv2.split(samples[k])):
            gx = cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3)
            mag = cv2.magnitude(gx, gy)
            for i, moved in masks:
                cv2.accumulate(gx, sums[i][0][c], mask=moved)
                cv2.accumulate(gy, sums[i][1][c], mask=moved)
                cv2.accumulate(mag, sums[i][2][c], mask=moved)
            if top is not None:
                cv2.max(top, mag, dst=top)
        if top is not None:
            cv2.accumulate((top >= _EDGE_MIN).view(np.uint8), present)
    out = []
    for i, gap in enumerate(gaps):
        gx_sum, gy_sum, m_sum = sums[i]
        pairs = len(greys) - gap
        # Per channel on contiguous planes (reductions over a trailing axis of 3 cost 10x more).
        coherent = [np.hypot(gx_sum[c], gy_sum[c]) for c in range(3)]
        ratio = np.maximum.reduce([coherent[c] / np.maximum(m_sum[c], 1e-3) for c in range(3)])
        edge = (ratio >= _COHERENCE) & (moved_n[i] >= _MIN_MOVED * pairs)
        edge &= np.maximum.reduce(coherent) >= _EDGE_MIN * moved_n[i]
        if gap > 1:
            edge &= present >= _SLOW_PRESENT * (len(greys) - min(gaps))
        orient = _orientation(gx_sum, gy_sum, coherent)
        out.append(
            (
                edge,
                (gx_sum, gy_sum),
                (change[i] / pairs).astype(np.float32),
                orient,
                (changed_n[i] / max(1, pairs)).astype(np.float32),
            )
        )
    return out


def _pair_gap(n: int, step: int | None) -> int:
    """Samples between a pair compared for slow change: ``_SLOW_GAP_FRAMES`` frames at least.

    ``step``: frames between consecutive samples (None: unknown, and 1 is used: no slow pass).
    """
    if step is None:
        return 1
    return max(1, min(-(-_SLOW_GAP_FRAMES // max(1, step)), (n - 1) // 2))


def _slow_opaque(
    stack: NDArray[np.uint8],
    edge: NDArray[np.bool_],
    gsum: _Gradients,
    change: NDArray[np.float32],
    orient: tuple[NDArray[np.float32], NDArray[np.float32]],
) -> Detection:
    """Opaque overlays over a scene that changes too slowly between consecutive samples.

    When the samples are consecutive frames (a short clip), a slow pan or a gently swaying
    field changes each place by less than ``_CHANGED`` from one to the next, so no edge around
    an opaque overlay counts as persistent (dogs-jump's opaque timestamp over grass at 432x240:
    14 % of its rim's pixels had a changing scene around them in 40 % of the pairs). Pairs
    ``gap`` samples apart (``edge``, ``gsum``, ``change`` from :func:`_persistent_edges`) see
    that change. Only the opaque edges are used, and only regions that damp the scene by
    ``_OPAQUE_BODY`` (:func:`_with_opaque`): compared far apart, a pan along a banner's
    horizontal stripes leaves them persistent and the band between them nearly still, a faint
    region that the blend tests then take for an overlay.
    """
    n, h, w = stack.shape
    kept, gain, grey, sides, _strong = _blend_evidence(stack, gsum, edge)
    opaque = edge & kept & (gain < _DAMP_OPAQUE)
    return _regions(opaque, change, orient, h, w, n, (gain, grey, sides))


def _regrown(found: Detection, wide: Detection, gain: NDArray[np.float32]) -> Detection | None:
    """The semi-transparent regions of ``found`` found in part, replaced by their wider selves.

    An 80 % overlay's edges whose still side changes by more than noise fail both blend tests
    (:func:`_blend_evidence`), and a running timestamp found from its other edges is found in
    part (soapbox's at 854x480: 0.449 of it). The strongly damped edges, grouped with the kept
    ones (``wide``), find the rest; alone they found too much (an opaque text grew into the
    water beside it, half-found timestamps on clips whose scene is still). So a region of
    ``wide`` replaces one of ``found`` only when the found one is semi-transparent (its edges'
    median ``gain`` at least ``_SEMI_GAIN``), it is the only one the wider region touches, and
    the wider region holds ``_REGROW_HOLD`` of it.

    Returns:
        ``found``'s mask with those replacements and, as its regions, the wider regions that
        replaced one; None when none did.
    """
    mask, opacity = found.mask.copy(), found.opacity.copy()
    regions = list(found.regions)
    wider_ones = []
    _count, parts = cv2.connectedComponents(found.mask.view(np.uint8), connectivity=8)
    for wider in wide.regions:
        own = _in_box(wide.mask, wider)
        # The found parts it touches, and the found regions those parts belong to.
        old = np.isin(parts, np.unique(parts[own & found.mask])) & found.mask
        touched = [r for r in regions if old[r.y : r.y + r.height, r.x : r.x + r.width].any()]
        if len(touched) != 1:
            continue
        g = gain[old]
        g = g[np.isfinite(g)]
        if g.size < _MIN_BLEND_EDGES or float(np.median(g)) < _SEMI_GAIN:
            continue
        if own.sum() <= old.sum() or (own & old).sum() < _REGROW_HOLD * old.sum():
            continue
        mask = (mask & ~old) | own
        opacity = np.where(own, wide.opacity, np.where(old, 0.0, opacity)).astype(np.float32)
        regions = [q for q in regions if q is not touched[0]]
        wider_ones.append(wider)
    if not wider_ones:
        return None
    wider_ones.sort(key=lambda r: -r.pixels)
    return Detection(mask, opacity, tuple(wider_ones), found.frames)


def _in_box(mask: NDArray[np.bool_], r: OverlayRegion) -> NDArray[np.bool_]:
    """``mask`` within ``r``'s box, False elsewhere."""
    out = np.zeros_like(mask)
    box = np.s_[r.y : r.y + r.height, r.x : r.x + r.width]
    out[box] = mask[box]
    return out


def _united(a: Detection, b: Detection) -> Detection:
    """Both detections' overlays: the union of their masks; a region of ``b`` that overlaps
    regions of ``a`` is one overlay with them (its box the union of theirs)."""
    mask = a.mask | b.mask
    opacity = np.where(a.mask, a.opacity, b.opacity).astype(np.float32)
    regions = list(a.regions)
    for r in b.regions:
        own = _in_box(b.mask, r)
        same = [q for q in regions if own[q.y : q.y + q.height, q.x : q.x + q.width].any()]
        y0 = min([r.y] + [q.y for q in same])
        x0 = min([r.x] + [q.x for q in same])
        y1 = max([r.y + r.height] + [q.y + q.height for q in same])
        x1 = max([r.x + r.width] + [q.x + q.width for q in same])
        part = mask[y0:y1, x0:x1]
        members = [r, *same]
        op = sum(q.opacity * q.pixels for q in members) / max(sum(q.pixels for q in members), 1)
        regions = [q for q in regions if all(q is not m for m in same)]
        regions.append(_region(part, y0, x0, int(part.sum()), float(op)))
    regions.sort(key=lambda r: -r.pixels)
    return Detection(mask, opacity, tuple(regions), a.frames)


def _with_opaque(found: Detection, opaque: Detection) -> Detection:
    """``found`` and the opaque overlays found from the opaque edges alone that it missed.

    The closing that joins an overlay's edges also joins them to the scene's edges that pass the
    blend test nearby; on a busy scene the overlay becomes part of one large region that fails
    the rim test (parkour's opaque text at 854x480: one region of 541x184 px, 16,354 edge
    pixels). The edges whose still side is still (an opaque overlay's) are grouped again on
    their own; a region found so that damps the scene by at least ``_OPAQUE_BODY`` and touches
    nothing ``found`` has is added. Measured on ``bench/overlays.py --detect-only``: parkour's
    text found at 854x480 (1.000 at 1.22x its area); at 0.5 instead of 0.9, the still
    spectators' silhouettes in front of a moving aquarium (``trackanything_sample4_aquarium``)
    were found too (damping 0.59-0.69).
    """
    new = [
        r
        for r in opaque.regions
        if r.opacity >= _OPAQUE_BODY
        and not found.mask[r.y : r.y + r.height, r.x : r.x + r.width].any()
    ]
    if not new:
        return found
    keep = np.logical_or.reduce([_in_box(opaque.mask, r) for r in new])
    mask = found.mask | keep
    opacity = np.where(keep, opaque.opacity, found.opacity).astype(np.float32)
    regions = sorted((*found.regions, *new), key=lambda r: -r.pixels)
    return Detection(mask, opacity, tuple(regions), found.frames)


def _with_recurring(
    found: Detection, samples: list[NDArray[np.uint8]], change: NDArray[np.float32]
) -> Detection:
    """Add to each found overlay the nearby pixels that show its colour in some samples.

    A running timestamp's changing digits have no persistent edges: only the digits that stay
    put are found. Where an overlay keeps one colour (its stillest pixels vary by at most
    ``_RECUR_SPREAD`` over the samples: an opaque overlay, or a nearly opaque one), the pixels
    within ``_RECUR_REACH`` closing widths of it (of a line: all along it, a closing across it)
    that show that colour, within ``_RECUR_TOL`` (or three times that spread), in at least
    ``_RECUR_SAMPLES`` samples, and that join the overlay across gaps narrower than a closing,
    are the changing parts; they are added, grown by a pixel for their anti-aliased rims.
    Measured on ``bench/overlays.py`` (``--detect-only``): the opaque timestamps' coverage
    0.85-0.86 -> 1.00 at 432x240 (area 1.58-1.62x) and 0.84-0.89 -> 1.00 at 854x480, the 80 %
    one at 854x480 0.82 -> 1.00 (1.28x). Along a line and only a closing across it (it was four
    closings all round): a timestamp whose left characters sat on a still part of the scene
    0.786 -> 0.992 (paragliding-launch, 432x240), an 80 % one 0.618 -> 0.962 (soapbox), a 55 %
    text 0.954 -> 0.995; and scooter-black's timestamp at 854x480 no longer takes in the dark
    scooters above and below it (2.03 -> 1.40x its area).
    """
    h, w = found.mask.shape
    close = _closing_px(h, w)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close))
    mask, opacity = found.mask.copy(), found.opacity.copy()
    regions = []
    for r in found.regions:
        # Around the region; a line (text, a timestamp: one side at least twice the other) all
        # along its line, but across it by a closing only (the characters of a line that were not
        # found are its height and on it, and join it across gaps narrower than a closing).
        my = mx = _RECUR_REACH * close
        if r.width >= _LINE_ASPECT * r.height:
            mx, my = w, close
        elif r.height >= _LINE_ASPECT * r.width:
            mx, my = close, h
        y0, y1 = max(0, r.y - my), min(h, r.y + r.height + my)
        x0, x1 = max(0, r.x - mx), min(w, r.x + r.width + mx)
        body = found.mask[y0:y1, x0:x1]
        change_b = change[y0:y1, x0:x1]
        still = body & (change_b <= np.median(change_b[body]))
        values = np.stack([s[y0:y1, x0:x1][still] for s in samples]).astype(np.float32)
        colour = np.median(np.median(values, axis=0), axis=0)
        spread = float(np.median(np.linalg.norm(values - colour, axis=-1)))
        added = np.zeros_like(body)
        if spread <= _RECUR_SPREAD:
            tol = max(_RECUR_TOL, 3 * spread)
            shows = np.zeros(body.shape, np.int32)  # samples in which each pixel shows the colour
            for sample in samples:  # one crop at a time: memory stays that of one crop
                diff = sample[y0:y1, x0:x1].astype(np.float32) - colour
                shows += np.linalg.norm(diff, axis=-1) < tol
            seen = (shows >= _RECUR_SAMPLES) & ~body
            joined = cv2.morphologyEx((seen | body).view(np.uint8), cv2.MORPH_CLOSE, kernel)
            _count, labels = cv2.connectedComponents(joined, connectivity=8)
            touching = np.unique(labels[body & (labels > 0)])
            added = np.isin(labels, touching) & seen
            added = _grown(added) & ~body
            added &= ~mask[y0:y1, x0:x1]  # another overlay's pixels stay its own
        if not added.any():
            regions.append(r)
            continue
        mask[y0:y1, x0:x1] |= added
        opacity[y0:y1, x0:x1][added] = r.opacity
        regions.append(_region(body | added, y0, x0, r.pixels + int(added.sum()), r.opacity))
    regions.sort(key=lambda r: -r.pixels)
    return Detection(mask, opacity, tuple(regions), found.frames)


def _blend_evidence(
    greys: NDArray[np.uint8], gsum: _Gradients, edge: NDArray[np.bool_]
) -> tuple[
    NDArray[np.bool_],
    NDArray[np.float32],
    NDArray[np.float32],
    NDArray[np.int16],
    NDArray[np.bool_],
]:
    """Keep the edge pixels across which the two sides behave like an overlay over a scene.

    Two pixels ``_SIDE_PX`` either side of the edge (along its summed gradient) are compared over
    the samples. Across an overlay's edge one side is the other damped: constant when the overlay
    is opaque, ``(1 - a)`` times its neighbour's change when not, and following it in time (the
    same scene is under both). Across a scene's own edge (a swaying person, a moving object's
    outline) the two sides are unrelated or change alike.

    Returns:
        The kept edge pixels, and at each of them the blend the two sides imply (NaN elsewhere):
        the gain ``1 - a`` (the still side's spread over the other's) and the overlay's grey
        level ``W`` (from ``mean_in = (1 - a) mean_out + a W``); the offset ``8 dy + dx``
        from each edge pixel to its still side (0 elsewhere); and the edge pixels not kept whose
        still side is strongly damped (below ``_STRONG_DAMP`` of the other's change, correlated
        above ``_STRONG_CORR``): an 80 % overlay's edges, which fail both tests when its still
        side changes by more than noise, among others (:func:`_regrown`).
    """
    ys, xs = np.nonzero(edge)
    keep = np.zeros_like(edge)
    strong = np.zeros_like(edge)
    gain_map = np.full(edge.shape, np.nan, np.float32)
    grey_map = np.full(edge.shape, np.nan, np.float32)
    sides = np.zeros(edge.shape, np.int16)
    if ys.size == 0:
        return keep, gain_map, grey_map, sides, strong
    _n, h, w = greys.shape
    gx_sum, gy_sum = gsum
    at = np.stack(  # (P, channels, 2)
        [
            np.stack([gx[ys, xs], gy[ys, xs]], axis=-1)
            for gx, gy in zip(gx_sum, gy_sum, strict=True)
        ],
        axis=1,
    )
    mag = np.hypot(at[:, :, 0], at[:, :, 1])
    best = mag.argmax(axis=-1)
    g = at[np.arange(ys.size), best]
    unit = g / np.maximum(np.hypot(g[:, 0], g[:, 1]), 1e-6)[:, None]
    xa = np.clip(np.rint(xs + _SIDE_PX * unit[:, 0]), 0, w - 1).astype(int)
    ya = np.clip(np.rint(ys + _SIDE_PX * unit[:, 1]), 0, h - 1).astype(int)
    xb = np.clip(np.rint(xs - _SIDE_PX * unit[:, 0]), 0, w - 1).astype(int)
    yb = np.clip(np.rint(ys - _SIDE_PX * unit[:, 1]), 0, h - 1).astype(int)
    a = greys[:, ya, xa].astype(np.float32)  # (n, P)
    b = greys[:, yb, xb].astype(np.float32)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    a -= mean_a
    b -= mean_b
    sa, sb = np.sqrt((a * a).mean(axis=0)), np.sqrt((b * b).mean(axis=0))
    lo, hi = np.minimum(sa, sb), np.maximum(sa, sb)
    damp = lo / np.maximum(hi, 1e-3)
    corr = (a * b).mean(axis=0) / np.maximum(sa * sb, 1e-3)
    opaque = (damp < _DAMP_OPAQUE) & (hi > _SIDE_STD) & (lo < _STILL_STD)
    blended = (corr > _SIDE_CORR) & (damp < _DAMP_MAX) & (hi > _SIDE_STD)
    keep[ys, xs] = opaque | blended
    strong[ys, xs] = (
        (damp < _STRONG_DAMP) & (hi > _SIDE_STD) & (corr > _STRONG_CORR) & ~(opaque | blended)
    )
    a_still = sa < sb
    m_in, m_out = np.where(a_still, mean_a, mean_b), np.where(a_still, mean_b, mean_a)
    gain_map[ys, xs] = damp
    grey_map[ys, xs] = (m_in - damp * m_out) / np.maximum(1 - damp, 1e-3)
    # The still side's offset (its opposite is the changing side's).
    sides[ys, xs] = np.where(a_still, ya - ys, yb - ys) * 8 + np.where(a_still, xa - xs, xb - xs)
    return keep, gain_map, grey_map, sides, strong


def _orientation(
    gx_sum: list[NDArray[np.float32]],
    gy_sum: list[NDArray[np.float32]],
    mag: list[NDArray[np.float32]],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Doubled-angle unit vectors of each pixel's summed gradient (strongest channel).

    Per channel: the summed gradient's components and its length.
    """
    gx, gy, top = gx_sum[0], gy_sum[0], mag[0]
    for c in range(1, len(mag)):  # the first strongest channel, as argmax takes it
        more = mag[c] > top
        gx, gy, top = (
            np.where(more, gx_sum[c], gx),
            np.where(more, gy_sum[c], gy),
            np.maximum(top, mag[c]),
        )
    m2 = np.maximum(gx * gx + gy * gy, 1e-6)
    return ((gx * gx - gy * gy) / m2).astype(np.float32), (2 * gx * gy / m2).astype(np.float32)


def _regions(
    edge: NDArray[np.bool_],
    change: NDArray[np.float32],
    orient: tuple[NDArray[np.float32], NDArray[np.float32]],
    h: int,
    w: int,
    n: int,
    blend: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int16]],
) -> Detection:
    """Group persistent edges into overlays, fill their insides, drop what is not an overlay.

    ``blend``: the gain and grey level each kept edge pixel's two sides imply and the offset to
    its still side (:func:`_blend_evidence`), which find a faint overlay whose inside changes
    too much to count as damped (:func:`_one_blend`, :func:`_faint_body`).
    """
    close = _closing_px(h, w)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close))
    joined = cv2.morphologyEx(edge.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    mask = np.zeros((h, w), bool)
    opacity = np.zeros((h, w), np.float32)
    regions: list[OverlayRegion] = []
    bodies: list[tuple[int, int, NDArray[np.bool_]]] = []  # each region's body: (y0, x0, crop)
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
        # One crop around the component, wide enough for its body (``_BODY_REACH`` closings).
        reach = _BODY_REACH * close
        by0, by1 = max(y - reach, 0), min(y + bh + reach, h)
        bx0, bx1 = max(x - reach, 0), min(x + bw + reach, w)
        edges_b = np.zeros((by1 - by0, bx1 - bx0), bool)
        edges_b[y - by0 : y - by0 + bh, x - bx0 : x - bx0 + bw] = comp
        change_b = change[by0:by1, bx0:bx1]
        enclosed = _enclosed(edges_b)
        # The scene's change just around the component, against its own change: an overlay
        # damps it (to nothing if opaque, by (1 - a) if not). The outside proper, not the inside
        # of a ring or a letter.
        ring = (cv2.dilate(edges_b.view(np.uint8), kernel) > 0) & ~edges_b & ~enclosed
        outside = float(np.median(change_b[ring])) if ring.any() else 0.0
        if outside <= 0:
            continue
        body_b, inside = _body(edges_b, enclosed, change_b, outside)
        op = float(np.clip(1 - inside / outside, 0, 1))
        faint = _one_blend(e, blend, y, x) if op < _MIN_OPACITY else None
        if faint is not None:
            # The scene changes nearly as much inside as around it (a 30 % logo damps the
            # change by 0.7 only), but the edges all around say one blend.
            op = faint
            # A wider crop: the body may grow by _FAINT_STEPS closings beyond the edges.
            reach = (_BODY_REACH + _FAINT_STEPS) * close
            by0, by1 = max(y - reach, 0), min(y + bh + reach, h)
            bx0, bx1 = max(x - reach, 0), min(x + bw + reach, w)
            edges_b = np.zeros((by1 - by0, bx1 - bx0), bool)
            edges_b[y - by0 : y - by0 + bh, x - bx0 : x - bx0 + bw] = comp
            own = np.zeros_like(edges_b)
            own[y - by0 : y - by0 + bh, x - bx0 : x - bx0 + bw] = e
            change_b = change[by0:by1, bx0:bx1]
            body_b = _faint_body(edges_b, own, blend[2][by0:by1, bx0:bx1], change_b, op, close)
        elif op < _MIN_OPACITY:  # the scene changes as much inside as around it: no overlay
            continue
        # An overlay's outline is its own edges: most of the found region's rim lies on the
        # persistent edges (a blob of still scene closed up from scattered edges does not).
        # A region whose edges agree on one strong blend matching its body's damping (an 80 %
        # timestamp: its changing digits leave much of its rim off the persistent edges) is
        # held to the faint overlays' rim test. Not a faint blend: a moving banner's edges
        # agree on a 0.21 blend (diffueraser_example1) and were found so.
        agree = faint is not None
        if not agree:
            said = _one_blend(e, blend, y, x)
            agree = said is not None and said >= _AGREE_OPACITY and abs(said - op) <= _AGREE_TOL
        need = _RIM_ON_EDGES if not agree else _RIM_ON_EDGES_FAINT
        edge_b = edge[by0:by1, bx0:bx1]
        if _rim_on_edges(body_b, edge_b) < need:
            if faint is not None:
                continue
            # Over a nearly still scene the inside of a ring has damped speckles everywhere,
            # which make a ragged body; its holes judged each as a whole instead.
            body_b, inside = _body(edges_b, enclosed, change_b, outside, edge_b & ~edges_b)
            op = float(np.clip(1 - inside / outside, 0, 1))
            if op < _MIN_OPACITY or _rim_on_edges(body_b, edge_b) < need:
                continue
        if faint is None:
            body_b = _trimmed(body_b, change_b, outside)
        mask[by0:by1, bx0:bx1] |= body_b
        opacity[by0:by1, bx0:bx1][body_b] = (
            np.clip(1 - change_b[body_b] / outside, 0, 1) if faint is None else op
        )
        regions.append(_region(body_b, by0, bx0, int(body_b.sum()), op))
        bodies.append((by0, bx0, body_b))
    regions = _merged(regions, bodies)
    regions.sort(key=lambda r: -r.pixels)
    return Detection(mask, opacity, tuple(regions), n)


def _rim_on_edges(body: NDArray[np.bool_], edges: NDArray[np.bool_]) -> float:
    """Share of ``body``'s rim (its 3x3 morphological gradient) within a pixel of ``edges``."""
    rim = cv2.morphologyEx(body.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    near = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8))
    return float(near[rim > 0].mean()) if rim.any() else 0.0


def _merged(
    regions: list[OverlayRegion], bodies: list[tuple[int, int, NDArray[np.bool_]]]
) -> list[OverlayRegion]:
    """Regions whose bodies overlap or touch are one overlay (a faint logo's bar found on its own
    beside its ring; a word's letters grouped twice from edges closed up in two ways): one
    region boxing their bodies' union, its opacity their pixels' weighted mean.

    ``bodies``: each region's body, a crop at ``(y0, x0)`` of the frame.
    """
    if len(regions) < 2:
        return regions
    parent = list(range(len(regions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Each body grown by a pixel (its crop padded by one, so its origin moves up and left by
    # one): a pair touches when one's grown body meets the other's body.
    grown = [
        (y0 - 1, x0 - 1, cv2.dilate(np.pad(b, 1).view(np.uint8), np.ones((3, 3))).view(bool))
        for y0, x0, b in bodies
    ]
    for i, j in itertools.combinations(range(len(regions)), 2):
        (yi, xi, bi), (yj, xj, bj) = grown[i], bodies[j]
        y0, y1 = max(yi, yj), min(yi + bi.shape[0], yj + bj.shape[0])
        x0, x1 = max(xi, xj), min(xi + bi.shape[1], xj + bj.shape[1])
        if (
            y0 < y1
            and x0 < x1
            and (
                bi[y0 - yi : y1 - yi, x0 - xi : x1 - xi] & bj[y0 - yj : y1 - yj, x0 - xj : x1 - xj]
            ).any()
        ):
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(regions)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(regions[members[0]])
            continue
        # The union on the members' common box (their bodies lie within their boxes).
        uy0 = min(regions[k].y for k in members)
        ux0 = min(regions[k].x for k in members)
        uy1 = max(regions[k].y + regions[k].height for k in members)
        ux1 = max(regions[k].x + regions[k].width for k in members)
        union = np.zeros((uy1 - uy0, ux1 - ux0), bool)
        for k in members:
            y0, x0, b = bodies[k]
            cy0, cx0 = max(y0, uy0), max(x0, ux0)
            cy1, cx1 = min(y0 + b.shape[0], uy1), min(x0 + b.shape[1], ux1)
            union[cy0 - uy0 : cy1 - uy0, cx0 - ux0 : cx1 - ux0] |= b[
                cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0
            ]
        weight = sum(regions[k].pixels for k in members)
        op = sum(regions[k].opacity * regions[k].pixels for k in members) / max(weight, 1)
        out.append(_region(union, uy0, ux0, int(union.sum()), float(op)))
    return out


def _faint_body(
    edges: NDArray[np.bool_],
    own: NDArray[np.bool_],
    sides: NDArray[np.int16],
    change: NDArray[np.float32],
    opacity: float,
    close: int,
) -> NDArray[np.bool_]:
    """A faint overlay's body (crop of one component): voted for by its edges, trimmed to what
    the overlay damps, and grown into the damped places next to it that its edges missed."""
    body = _voted_body(edges, own, sides)
    # The scene's change around each place, from the places outside the body (a still part of
    # the scene beside the overlay lowers it, so a damped place is damped against its own
    # surroundings).
    scene = ~body
    typical = float(np.median(change[scene])) if scene.any() else float(change.mean())
    ref = _local_change(change, scene, float(close), typical)
    damped = change < (1 - opacity / 2) * ref
    core = body & damped
    # Damped places reached from the core in a few steps of a closing's width (a letter whose
    # upper edges went undetected; not the whole of a still part of the scene beside it).
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close))
    for _ in range(_FAINT_STEPS):
        core |= damped & (cv2.dilate(core.view(np.uint8), kernel) > 0)
    return core | (_grown(core) & (change < ref))


def _voted_body(
    edges: NDArray[np.bool_], own: NDArray[np.bool_], sides: NDArray[np.int16]
) -> NDArray[np.bool_]:
    """A faint overlay's body: its edges and the places next to them that its edges call inside.

    Each of the component's own edge pixels (``own``) votes for its still side and against its
    changing side (``sides``: the offset ``8 dy + dx`` to the still side, from
    :func:`_blend_evidence`); the places where the votes over each 3x3 neighbourhood are for (a
    ring's band between its two rims, a stroke) join ``edges`` (the component, closed up).
    """
    h, w = edges.shape
    ys, xs = np.nonzero(own)
    off = sides[ys, xs].astype(np.int32)
    dy = np.rint(off / 8).astype(np.int32)
    dx = off - 8 * dy
    votes = np.zeros((h, w), np.float32)
    for sign in (1, -1):
        vy, vx = ys + sign * dy, xs + sign * dx
        ok = (vy >= 0) & (vy < h) & (vx >= 0) & (vx < w)
        np.add.at(votes, (vy[ok], vx[ok]), float(sign))
    near = cv2.boxFilter(votes, -1, (3, 3), normalize=False)
    return edges | (near > 0)


def _one_blend(
    edges: NDArray[np.bool_],
    blend: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int16]],
    y: int,
    x: int,
) -> float | None:
    """The opacity of a faint overlay whose edges (a crop at ``(y, x)``) all say the same blend.

    Along a semi-transparent overlay's outline every edge pixel's still side is the other side
    damped by the same gain ``1 - a`` and lifted towards the same colour ``W``; along the scene's
    own edges that pass the blend test the gain and the implied colour vary. Measured on the 13
    clean and 26 burnt clips of ``bench/overlays.py`` (432x240), over the regions that reach
    this test: the interquartile range of the gain was 0.05-0.14 along the 30-80 % overlays (of
    the implied grey level 4-15 levels, but 71 for a ring over a bright court), 0.16-0.64 along
    the clean clips' (12-225 levels).
    """
    gain_map, grey_map, _sides = blend
    h, w = edges.shape
    gain = gain_map[y : y + h, x : x + w][edges]
    grey = grey_map[y : y + h, x : x + w][edges]
    ok = np.isfinite(gain) & np.isfinite(grey)
    if ok.sum() < _MIN_BLEND_EDGES:
        return None
    g25, g50, g75 = np.percentile(gain[ok], (25, 50, 75))
    w25, w75 = np.percentile(grey[ok], (25, 75))
    if g75 - g25 > _BLEND_GAIN_IQR or w75 - w25 > _BLEND_GREY_IQR:
        return None
    op = 1.0 - float(g50)
    return op if op >= _MIN_OPACITY else None


def _grown(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``mask`` grown by one pixel (3x3 square)."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def _closing_px(h: int, w: int) -> int:
    """Width (odd px) of the closing that joins an overlay's edges into one region."""
    return max(3, round(0.012 * max(h, w))) | 1


def _region(
    crop: NDArray[np.bool_], y0: int, x0: int, pixels: int, opacity: float
) -> OverlayRegion:
    """The :class:`OverlayRegion` of the True pixels of ``crop``, a crop at ``(y0, x0)``."""
    ys, xs = np.nonzero(crop)
    return OverlayRegion(
        x0 + int(xs.min()),
        y0 + int(ys.min()),
        int(xs.max() - xs.min()) + 1,
        int(ys.max() - ys.min()) + 1,
        pixels,
        opacity,
    )


def _body(
    edges: NDArray[np.bool_],
    enclosed: NDArray[np.bool_],
    change: NDArray[np.float32],
    outside: float,
    others: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], float]:
    """An overlay's body around one component of persistent edges, and the scene's change in it.

    The body is the edges plus the still places they bound. A thick stroke (a ring's band) has an
    edge on each side that the closing does not join; its body is the band between them, whose
    own change (not the edge pixels', which straddle overlay and scene) says how much the overlay
    damps the scene.

    Args:
        edges: (h, w) bool, the component in a crop around it (``_BODY_REACH`` closing widths).
        enclosed: (h, w) bool, what ``edges`` enclose (:func:`_enclosed`).
        change: (h, w) mean change of the scene over the samples, same crop.
        outside: the scene's change just around the component.
        others: (h, w) bool, the other persistent edges in the crop: when given, each enclosed
            hole is judged as a whole (a second try, for a body whose rim failed the rim test).

    Returns:
        The body (same crop) and the median change inside it.
    """
    band = _bounded_by((change < _BAND_DAMP * outside) & ~edges, edges)
    # Grown by a pixel: a stroke's anti-aliased outline (half overlay, half scene) changes too
    # much to count as damped, and the edge pixels miss it where a rim went undetected.
    body = edges | _grown(band)
    # Enclosed holes belong to the overlay when they are damped too (a solid logo's inside), not
    # when the scene shows through (the middle of a ring, the inside of an O).
    damped = enclosed & (change < _HOLE_DAMP * outside)
    if others is None:
        body |= damped
    else:
        # Each hole (bounded by this component's edges or by the other persistent edges
        # nearby, ``others``: a bar across a ring is its own hole) judged as a whole: its damped
        # pixels are taken when its median change is below the limit, and beside a still band
        # (an opaque overlay's, change near 0) below halfway from the band's change to it.
        limit = _HOLE_DAMP * outside
        if band.any():
            limit = min(limit, (float(np.median(change[band])) + limit) / 2)
        count, labels = cv2.connectedComponents(
            (enclosed & ~body & ~others).view(np.uint8), connectivity=4
        )
        medians = np.full(count, np.inf)
        for k in range(1, count):
            medians[k] = np.median(change[labels == k])
        taken = (labels > 0) & (medians[labels] < limit) & damped
        body |= taken | (_grown(taken) & others & enclosed)
    # Measured on the damped places when they are as many as the edge pixels (a thin stroke
    # closed up by the closing has none: its edges are its body).
    inner = body & ~edges
    if inner.sum() >= edges.sum():
        return body, float(np.median(change[inner]))
    return body, float(np.median(change[edges]))


def _trimmed(
    body: NDArray[np.bool_], change: NDArray[np.float32], outside: float
) -> NDArray[np.bool_]:
    """A found overlay's body without the scene that the closing and the edges took in.

    The closing that joins an overlay's edges into one region also fills the scene between its
    letters, and an edge's pixels reach a pixel into the scene along every rim: those change like
    the scene. Kept: the body's pixels that change less than ``_TRIM_DAMP`` times the scene
    around it, grown by a pixel into those that change less than the scene right next to them
    (an anti-aliased rim is part overlay; the scene's change varies over the overlay, so each
    place is judged against its own surroundings, ``_FRINGE_SIGMA_PX``). Growing instead into
    every place changing less than 1.5 times the median around the overlay took in a pixel of
    scene all round: text at 1.58-1.62x its area (432x240), 1.40-1.47x now, with the pixels at
    least a tenth covered still covered at 0.976-0.998 (0.974-1.000 before); rings 1.04-1.08x
    -> 1.09-1.10x, their rims better covered (0.964 -> 0.998 on one). The trim itself, when it
    came (measured on the 26 overlays of ``bench/overlays.py``, 432x240): the opaque and 55 % text
    found at 1.65-1.79x the overlay's area then at 1.47-1.61x, every overlay found before still
    covered at >= 0.998; at 854x480 the text 1.38-1.73x -> 1.26-1.54x, but one ring's coverage
    1.000 -> 0.993 and the timestamps' changing digits went too (0.969 -> 0.892: their recurring
    colour brings them back, :func:`_with_recurring`). A body with nothing that still is kept
    whole.
    """
    core = body & (change < _TRIM_DAMP * outside)
    if not core.any():
        return body
    around = _local_change(change, ~body, _FRINGE_SIGMA_PX, outside)
    return body & (core | (_grown(core) & (change < around)))


def _local_change(
    change: NDArray[np.float32], scene: NDArray[np.bool_], sigma: float, fallback: float
) -> NDArray[np.float32]:
    """The scene's change around each place: the Gaussian-weighted mean (``sigma`` px) of
    ``change`` over the ``scene`` places, ``fallback`` where there are next to none."""
    weight = cv2.GaussianBlur(scene.astype(np.float32), (0, 0), sigma)
    total = cv2.GaussianBlur(change * scene, (0, 0), sigma)
    return np.where(weight > 0.05, total / np.maximum(weight, 1e-3), fallback).astype(np.float32)


def _bounded_by(candidates: NDArray[np.bool_], edges: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The connected parts of ``candidates`` that ``edges`` bound.

    A part qualifies when it does not reach the crop's border and at least ``_BOUNDED_SHARE`` of
    the pixels just outside it lie next to ``edges`` (a band between two rims; not a patch of
    still scene that merely touches the overlay).
    """
    count, labels = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros_like(candidates)
    near = _grown(edges)
    # Per part: the pixels next to it outside every part (one between two parts counts for the
    # higher label), and how many of them are near the edges.
    grown = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    outer = (labels == 0) & (grown > 0)
    total = np.bincount(grown[outer], minlength=count)
    on = np.bincount(grown[outer & near], minlength=count)
    keep = on >= _BOUNDED_SHARE * np.maximum(total, 1)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep[border] = False
    keep[0] = False
    return keep[labels]


def _enclosed(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Pixels outside ``mask`` that ``mask`` encloses (not reachable from the border)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    cv2.floodFill(padded, None, (0, 0), 1)
    return (padded == 0)[1:-1, 1:-1]


# Un-blending (see Unblender; measured with bench/overlays.py).
_REFIT_EVERY = 8  # frames between refits once the first frames are in
_FIT_ROUNDS = 6  # alternations of per-pixel opacity and the overlay's colour
_FLOOR_WEIGHT = 0.02  # weight in the fit of a fill pixel no frame vouched for (invented)
_SNAP = 0.2  # opacities within this share of the overlay's plateau are the plateau
_OPACITY_SD = 0.01  # the plateau's own uncertainty (biases of the fit), amplified like noise
_CHANGE_TOL = 0.15  # a frame's own opacity this far from the fit, near 0 or the plateau: changed
_CHANGING_RATIO = 4.0  # a pixel varying this much more than one static blend of the scene ...
_CHANGING_SIGMA_PX = 3.0  # ... around it (the clear pixels within about this) would: it comes
_CHANGING_SNAP = 0.1  # and goes (:func:`_changing`); its frame's own opacity this near 0 or the
# plateau (as a share of the plateau) is taken as 0 or the plateau
_CHANGING_SHARE = 0.05  # an opaque fit this much of which varies that much is not opaque
_FADE = 0.1  # a recovery fades into the fill over this much opacity below max_opacity (_fade)
_SLACK = 12.0  # levels a recovered background may overshoot [0, 255] by (noise)
_CEILING_SLACK = 2.0  # noises (plus a level) a frame may lie beyond what an opacity allows
_LOSSY_NOISE = 0.5  # levels of noise on an opaque overlay's inside above which frames are lossy
# (lossless frames show its colour to the level: 0 on every PNG clip of the bench; 1.0 before
# 2026-12-07, the vouched fit's session: soapbox's text at CRF 18 measured 0.89 on 24 frames)
_NOISE_MIN_PX = 20  # ... measured on at least this many pixels of it (else not measured)
_MIN_CONTRAST = 40.0  # |W - fill| (levels, RGB norm) below which one frame says nothing of a
# One opacity for the whole overlay, over a still scene (:func:`_fit_blend`): tried when the fit
# over time calls the overlay opaque or the engine vouches for less than _POOR_VOUCHED of the fill
# (median), the frames under the overlay change by at most _SINGLE_STILL_STD (levels, RMS, median
# pixel) over at least _SINGLE_MIN_FRAMES frames, and the fill's mean frame varies along it by at
# least _SINGLE_MIN_SPREAD; fitted in _SINGLE_ROUNDS rounds (each drops the rim it finds); kept
# when at least _SINGLE_AGREE of the overlay's pixels have their own opacity within a quarter of
# the fit's and it puts the overlay at least _SINGLE_MARGIN below max_opacity, and (where the fit
# over time did not call the overlay opaque) at least _SINGLE_BELOW below that fit's plateau. Its
# body: the still pixels 2 px or more inside the region whose own opacity is at least
# _SINGLE_DEEP of the fit's.
_SINGLE_STILL_STD = 5.0
_SINGLE_MIN_FRAMES = 3
_SINGLE_MIN_SPREAD = 10.0
_SINGLE_ROUNDS = 4
_SINGLE_AGREE = 0.25
_SINGLE_MARGIN = 0.2
_SINGLE_DEEP = 0.3
_SINGLE_BELOW = 0.1


class Unblender:
    """Recovers the background under a static semi-transparent overlay, frame by frame.

    Model: ``I_t = a W + (1 - a) J_t`` with ``a`` per pixel and the overlay's colour ``W`` shared
    by the region (one colour per overlay, as logos, watermarks and captions are). The video
    engine's fill ``F_t`` of the region, made from other frames, stands in for ``J_t`` in the fit,
    weighted by how much the engine vouches for each filled pixel (propagated footage counts,
    invented texture barely). The fit alternates between ``a`` per pixel (closed form given
    ``W``) and ``W`` (closed form given ``a``), from several starting colours, keeping the best;
    the overlay's inside is then snapped to its plateau opacity (so the fill's errors do not
    leak into it), its anti-aliased rim keeps its own. Over a still scene, where that fit has
    nothing to go on, one opacity and colour for the whole overlay are fitted to the mean frame
    instead; where the fill is mostly invented (a steady shot never uncovers the overlay's
    middle) but the scene under and around it changes, the plateau and colour come from the
    two sides of the overlay's outline (:func:`_fit_blend`, :func:`_outline_fit`). Each frame
    is recovered as ``J = (I - a W) / (1 - a)`` and blended with the fill by their expected
    errors: the fill's from the fit's residual over every frame, the recovery's from the frame's
    noise amplified by ``1 / (1 - a)``. Where a pixel's fit lies between 0 and the plateau and one
    frame's own opacity sits at one of them, and wherever the frames vary more than one static
    blend allows (a running timestamp's digits come and go, :func:`_changing`), that frame's
    opacity is used. Where the fill is poor, a pixel whose opacity is unsure also gets
    the background its neighbours in the same frame tell (:func:`_local_recovery`). On the rim,
    where the fit over time leans on the fill, the clear pixels around each pixel also tell its
    opacity over a sample of the frames (:func:`_with_neighbour_opacity`), and so does the mean
    frame with the background its neighbours tell, where the overlay's inside (whose opacity
    is known) says that estimate is the nearer (:func:`_with_mean_frame_opacity`). A pixel of a
    semi-transparent overlay whose fitted opacity the darkest or brightest value a frame showed
    there rules out (a white overlay's ``a <= I / 255``, :func:`_opacity_ceiling`) is taken as
    one the overlay covers in some frames only, as the changing ones are. An opaque overlay whose
    inside varies over the frames, or departs on the mean frame from its one colour, by more
    than half a level (lossy frames: H.264 rings and bleeds at its edges) is filled, not
    un-blended (:func:`_opaque_noise`).

    Only the region's bounding box is stored (sums per pixel, weighted and unweighted, and an
    evenly thinned sample of at most ``_LOOKS_MAX`` of its crops within ``_LOOKS_BYTES``), so
    memory stays flat.

    Args:
        region: (H, W) bool, where the overlay is (the un-blending stays inside it).
        max_opacity: above this estimated opacity the fill is kept (the background left in the
            frame is too faint to recover); un-blending fades out over the 0.1 below it.
        noise: the frames' noise (grey levels, quantisation and compression), amplified by
            ``1 / (1 - a)``; the test for digits that come and go takes the noise measured on
            an opaque fit's inside instead where that is larger (:func:`_opaque_noise`).
        fit_frames: frames after which the fit is refitted only every few frames.
    """

    def __init__(
        self,
        region: NDArray[np.bool_],
        *,
        max_opacity: float = 0.9,
        noise: float = 1.0,
        fit_frames: int = 24,
    ) -> None:
        ys, xs = np.nonzero(region)
        if ys.size == 0:
            raise ValueError("the overlay region is empty")
        # The region's box with a margin: the scene just around the overlay, which the fit from
        # its outline (_outline_fit) asks whether it changes.
        m = _BOX_MARGIN
        full_h, full_w = region.shape
        self.box = (
            max(0, int(ys.min()) - m),
            min(full_h, int(ys.max()) + 1 + m),
            max(0, int(xs.min()) - m),
            min(full_w, int(xs.max()) + 1 + m),
        )
        y0, y1, x0, x1 = self.box
        self.region = region[y0:y1, x0:x1]
        self.max_opacity = max_opacity
        self.noise = noise
        self.fit_frames = fit_frames
        shape = (y1 - y0, x1 - x0, 3)
        self.n = 0
        self._w = np.zeros(shape[:2], np.float64)
        self._sums = {k: np.zeros(shape, np.float64) for k in ("i", "f", "ii", "if", "ff")}
        # Unweighted sums, for the single-opacity fit's stillness test and weights (every frame
        # counts the same: the frames' change, and the fill's error in every frame it stands in).
        self._plain = {k: np.zeros(shape, np.float64) for k in ("i", "f", "ii", "if", "ff")}
        # Per pixel, the sum over frames of its product (RGB dot) with the pixel 2 px to the
        # right, below, below right and below left: the two sides of an edge (_outline_fit).
        self._cross = np.zeros((len(_PAIR_OFFSETS), *shape[:2]), np.float64)
        # A bounded, evenly thinned sample of the frames' boxes (every ``_look_every``-th frame):
        # the neighbours' estimate of the opacity on the overlay's rim (_with_neighbour_opacity).
        self._looks: list[NDArray[np.uint8]] = []
        self._look_every = 1
        self._looks_max = int(np.clip(_LOOKS_BYTES // (3 * shape[0] * shape[1]), 2, _LOOKS_MAX))
        # Per pixel and channel, the darkest and brightest value any frame showed: no background
        # outside [0, 255] can have given them, which caps a static opacity
        # (:func:`_opacity_ceiling`).
        self._lo = np.full(shape, 255, np.uint8)
        self._hi = np.zeros(shape, np.uint8)
        self._lossy = False  # an opaque overlay's inside was found to vary: lossy frames
        self._fit: _BlendFit | None = None

    def _crop(self, img: NDArray[T]) -> NDArray[T]:
        y0, y1, x0, x1 = self.box
        return img[y0:y1, x0:x1]

    def observe(
        self, rgb: NDArray[np.uint8], filled: NDArray[np.uint8], qc: QcInfo | None = None
    ) -> None:
        """Add one frame (as decoded) and the engine's fill of it to the fit.

        Args:
            qc: the engine's record of the frame's hole pixels: how much it vouches for each
                (1 = copied from footage, 0 = invented); None = all 1.
        """
        crop = self._crop(rgb)
        i, f = crop.astype(np.float64), self._crop(filled).astype(np.float64)
        c = np.ones(i.shape[:2])
        if qc is not None:
            y0, y1, x0, x1 = self.box
            inside = (qc.ys >= y0) & (qc.ys < y1) & (qc.xs >= x0) & (qc.xs < x1)
            conf = np.maximum(qc.confidence[inside], _FLOOR_WEIGHT)
            c[qc.ys[inside] - y0, qc.xs[inside] - x0] = conf
        _accumulate(self._sums, i, f, c[..., None])
        self._w += c
        _accumulate(self._plain, i, f)
        _accumulate_pairs(self._cross, i)
        np.minimum(self._lo, crop, out=self._lo)
        np.maximum(self._hi, crop, out=self._hi)
        if self.n % self._look_every == 0:
            self._looks.append(crop.copy())
            if len(self._looks) > self._looks_max:
                self._looks = self._looks[::2]
                self._look_every *= 2
        self.n += 1
        # Refitted while the fit is young, then every few frames (the sums change slowly).
        if self.n <= self.fit_frames or self.n % _REFIT_EVERY == 0:
            self._fit = None

    def fit(self) -> _BlendFit:
        """The blend's estimate from the frames seen so far (refitted every few frames)."""
        if self._fit is None:
            self._fit = _fit_blend(
                self._sums,
                np.maximum(self._w, 1e-6),
                self.region,
                self.noise,
                self.max_opacity,
                self._plain,
                self.n,
                self._cross,
                self._looks,
                (self._lo, self._hi, _CEILING_SLACK * self.noise + 1.0),
            )
        return self._fit

    @property
    def opacity(self) -> NDArray[np.float32]:
        """Estimated opacity per pixel of the box."""
        return self.fit().a

    @property
    def colour(self) -> NDArray[np.float32]:
        """Estimated colour of the overlay (RGB)."""
        return self.fit().colour

    def apply(self, rgb: NDArray[np.uint8], filled: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``filled`` with the region replaced by the blend of un-blended frame and fill."""
        fit = self.fit()
        # An opaque overlay on lossy frames (H.264): its rim and the colour it bleeds into its
        # surroundings carry the coding error, which un-blending would amplify; the fill is
        # better everywhere in the region (CRF 18 at 432x240: 3-11 dB). Once found, for the
        # rest of the clip: a fit that cannot measure it (too few pixels fitted opaque) would
        # switch back and forth, and the region flicker (motocross-jump's opaque timestamp at
        # CRF 18 and 854x480: flicker 4.67 -> 9.38 before this held).
        self._lossy = self._lossy or fit.measured_noise > _LOSSY_NOISE
        if self._lossy:
            return filled.copy()
        y0, y1, x0, x1 = self.box
        i = self._crop(rgb).astype(np.float64)
        f = self._crop(filled).astype(np.float64)
        a, w = fit.a.astype(np.float64), fit.weight.astype(np.float64)
        own = _frame_opacity(i, f, fit.colour)
        # A pixel fitted between 0 and the plateau whose frame sits at one of them: the overlay
        # covers it in some frames only (digits that change). Elsewhere the fit is kept even
        # when this frame's own opacity disagrees: that happens where the fill is wrong (an
        # object passing under the overlay that no other frame shows), where the fit is right.
        plateau = fit.plateau
        mid = (a > 0.15 * plateau) & (a < 0.85 * plateau)
        ownv = np.nan_to_num(own, nan=-1.0)
        extreme = ((ownv >= 0) & (ownv < 0.15 * plateau)) | (
            np.abs(ownv - plateau) < 0.15 * plateau
        )
        far = ~np.isnan(own) & (np.abs(ownv - a) > _CHANGE_TOL)
        # ... and a pixel fitted (nearly) clear that this frame covers at the plateau: a digit
        # shown in a few frames only.
        # Only for an opaque overlay: there the frame at the plateau is the overlay's own colour
        # exactly, which a bright object passing under a semi-transparent one may also give.
        opaque = plateau >= self.max_opacity
        covered = opaque & (a <= 0.15 * plateau) & (np.abs(ownv - plateau) < 0.15 * plateau)
        off = far & ((mid & extreme) | covered) & self.region
        if off.any():
            snapped = np.where(
                own < _CHANGE_TOL,
                0.0,
                np.where(np.abs(own - fit.plateau) < _CHANGE_TOL, fit.plateau, own),
            )
            a = np.where(off, snapped, a)
            # The frame's own opacity: trust it where it is low (little to amplify), fill where
            # it is high.
            own_w = _fade(self.max_opacity, snapped)
            w = np.where(off, own_w, w)
        if fit.changing is not None:
            # Where the overlay comes and goes (digits), the fit's opacity is an average of 0 and
            # the plateau that no frame has: each frame's own is used, at 0 or the plateau when
            # within _CHANGING_SNAP of them (an opaque overlay's digit is filled where it shows,
            # and the frame is kept where it does not).
            changing = fit.changing & ~np.isnan(own)
            if changing.any():
                lo, hi = _CHANGING_SNAP * plateau, (1.0 - _CHANGING_SNAP) * plateau
                frame_a = np.where(
                    ownv < lo, 0.0, np.where(ownv > hi, plateau, np.clip(ownv, 0.0, plateau))
                )
                a = np.where(changing, frame_a, a)
                own_w = _fade(self.max_opacity, frame_a)
                w = np.where(changing, own_w, w)
                off = off | changing
        if opaque:
            # An opaque overlay leaves nothing of the scene at its plateau; a pixel fitted in
            # between is its anti-aliased rim, or a part that changes (digits): un-blend it in
            # this frame only if the frame agrees with the fit, else keep the fill.
            w = np.where(mid & ~off & far, 0.0, w)
        b = np.maximum(1.0 - a, 0.05)[..., None]
        j = (i - a[..., None] * fit.colour) / b
        # A background outside the range of pixel values is no background: the model does not
        # hold at this pixel in this frame (a wrong opacity, amplified); keep the fill there.
        w = np.where(((j < -_SLACK) | (j > 255 + _SLACK)).any(-1), 0.0, w)
        j, w = _local_recovery(i, j, w, a, off, fit, self.region, self.max_opacity)
        out = filled.copy()
        mix = w[..., None] * j + (1.0 - w[..., None]) * f
        out[y0:y1, x0:x1] = np.clip(np.rint(mix), 0, 255).astype(np.uint8)
        return out


def _local_recovery(
    i: NDArray[np.float64],
    j: NDArray[np.float64],
    w: NDArray[np.float64],
    a: NDArray[np.float64],
    off: NDArray[np.bool_],
    fit: _BlendFit,
    region: NDArray[np.bool_],
    max_opacity: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A third estimate of the background where the per-pixel opacity is unsure: from the
    frame's own recovered pixels around it.

    Where the fill is poor, the opacity fitted per pixel against it is noisy on the overlay's
    anti-aliased rim, and a running timestamp's digits come and go, so the fit's opacity there is
    an average of 0 and the plateau. Each such pixel's background is also told by its neighbours
    in this frame whose background is known (outside the region, the inside snapped to the
    plateau, the pixels the overlay never covers: no sampled frame shows them covered,
    :func:`_clear_in_every_look`, where the fit asked): averaged into the unsure pixels
    (:func:`_spreader`), it gives the frame's own opacity there (the pixel on the line from that
    estimate to the overlay's colour) and with it the background, whose detail across that line
    is the frame's. Where this frame's own opacity counts (digits that come and go), it is 0 or
    the plateau inside a stroke and clear of the strokes (:func:`_snapped_own`), and the
    strokes' edges take the estimate again from the pixels so recovered, a pixel away.
    The three estimates (the fit's recovery, this one, the fill) are combined by their expected
    squared errors; this one's is the known pixels' gradient energy nearby times the squared
    distance to them. It is used only where the fill is poor (its expected error above
    ``_LOCAL_FILL_VAR``): with a good fill the fit's opacity is exact and so is its recovery.

    Args:
        i: (h, w, 3) the frame's box; j: the fit's recovery of it; w: its weight against the fill;
        a: the opacity used; off: the pixels where this frame's own opacity replaced the fit's;
        fit, region, max_opacity: the un-blender's.

    Returns:
        The recovery and its weight against the fill, with the unsure pixels' replaced.
    """
    plateau = fit.plateau
    if not 0.0 < plateau < max_opacity:
        return j, w
    trust = np.clip(fit.var_fill / _LOCAL_FILL_VAR - 1.0, 0.0, 1.0)
    snapped = (a == np.float32(plateau)) & ~off
    # Clear: no sampled frame shows the pixel covered, where that was asked (a pixel the fit
    # calls clear may hold a digit in some frames); else the fit's word.
    clear = ((a < _CLEAR_OPACITY) if fit.clear is None else fit.clear) & ~off
    unsure = region & ~snapped & ~clear & (trust > 0)
    ys, xs = np.nonzero(unsure)
    if ys.size == 0:
        return j, w
    known = i.astype(np.float32)
    known[region] = np.clip(np.rint(j[region]), 0, 255)
    hole = unsure.astype(np.uint8)
    sure = (1 - hole).astype(np.float32)
    est = _spreader(sure, ys, xs)(known)
    iu = i[ys, xs]
    colour = fit.colour.astype(np.float64)
    own, dd = _own_opacity(iu, est, colour)
    own = np.minimum(own, plateau + _OWN_ABOVE)
    sure_own = _snapped_own(own, dd, off, a, ys, xs, plateau)
    own = np.where(sure_own, np.where(own > 0.5 * plateau, plateau, 0.0), own)
    local = _recovered(iu, own, dd, est, colour)
    rest = ~sure_own
    if sure_own.any() and rest.any():
        # The snapped pixels' backgrounds are known now (the frame's own pixel, or its exact
        # inverse): the rest (the strokes' edges, mostly) take their neighbours' estimate again,
        # from a pixel away instead of from beyond the stroke.
        now = known.copy()
        now[ys[sure_own], xs[sure_own]] = np.clip(np.rint(local[sure_own]), 0, 255)
        hole[ys[sure_own], xs[sure_own]] = 0
        est_rest = _spreader((1 - hole).astype(np.float32), ys[rest], xs[rest])(now)
        own_rest, dd_rest = _own_opacity(iu[rest], est_rest, colour)
        own[rest] = own_rest = np.minimum(own_rest, plateau + _OWN_ABOVE)
        dd[rest] = dd_rest
        local[rest] = _recovered(iu[rest], own_rest, dd_rest, est_rest, colour)
    # The local estimate's expected error: the known scene's gradient energy (mean over a 9x9
    # window of the known pixels a pixel away from any unsure one) times the squared distance.
    near = _energy_near(known, sure, ys, xs)
    dist = cv2.distanceTransform(hole, cv2.DIST_L2, 3)[ys, xs]
    var_local = near * np.maximum(dist, 1.0) ** 2 + 4.0
    # Snapped, the recovery is the frame's own pixel (clear) or its exact inverse (covered):
    # its error is the plateau's, amplified.
    amplified = _OPACITY_SD * np.linalg.norm(colour - local, axis=1) / np.maximum(1.0 - own, 0.05)
    var_local = np.where(sure_own, 4.0 + amplified**2, var_local)
    # Inverse-variance combination. The fit's recovery does not count where this frame's own
    # opacity replaced it or it was rejected (out of range); the local one not where the frame
    # is (nearly) opaque.
    ou, wu, var_fill = off[ys, xs], w[ys, xs], fit.var_fill[ys, xs].astype(np.float64)
    p_fit = np.where(ou | (wu <= 0), 0.0, 1.0 / np.maximum(fit.var_rec[ys, xs], 1e-6))
    p_local = np.where(own > max_opacity, 0.0, trust[ys, xs] / var_local)
    total = p_fit + p_local
    both = (p_fit[:, None] * j[ys, xs] + p_local[:, None] * local) / np.maximum(total, 1e-12)[
        :, None
    ]
    var_both = 1.0 / np.maximum(total, 1e-12)
    fade = _fade(max_opacity, np.where(ou, own, a[ys, xs]))
    j, w = j.copy(), w.copy()
    j[ys, xs] = both
    w[ys, xs] = np.where(total > 0, var_fill / (var_fill + var_both), 0.0) * fade
    return j, w


def _energy_near(
    image: NDArray[np.float32],
    known: NDArray[np.float32],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    fallback: float | None = None,
) -> NDArray[np.float64]:
    """The mean squared gradient of ``image`` (Sobel / 8, mean over the channels) over a 9x9
    window at ``(ys, xs)``, over the pixels ``known`` (1) a pixel or more from its edge: how far
    off a background told from those pixels is expected to be per pixel of distance. Where none
    is in the window, ``fallback`` (by default their mean over the whole image; 100 without
    any)."""
    inner = cv2.erode(known, np.ones((3, 3), np.uint8))
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) / 8
    energy = (gx * gx + gy * gy).mean(-1) * inner
    num = cv2.boxFilter(energy, -1, (9, 9), normalize=False)[ys, xs]
    den = cv2.boxFilter(inner, -1, (9, 9), normalize=False)[ys, xs]
    if fallback is None:
        fallback = float(energy.sum() / inner.sum()) if inner.any() else 100.0
    return cast(NDArray[np.float64], np.where(den > 0, num / np.maximum(den, 1e-6), fallback))


def _fade(max_opacity: float, a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weight of a recovery against the fill at opacity ``a``: 1 up to ``_FADE`` below
    ``max_opacity``, 0 from it on (the fill is kept where the overlay is nearly opaque)."""
    return cast(NDArray[np.float64], np.clip((max_opacity - a) / _FADE, 0.0, 1.0))


def _recovered(
    i: NDArray[np.float64],
    own: NDArray[np.float64],
    dd: NDArray[np.float64],
    est: NDArray[np.float64],
    colour: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The background of pixels ``i`` ((n, 3)) at their own opacity, or the neighbours'
    estimate ``est`` where the overlay's colour is too near it (``dd``) to say."""
    local = (i - own[:, None] * colour) / np.maximum(1.0 - own, 0.05)[:, None]
    return np.where((dd > _MIN_CONTRAST**2)[:, None], local, est)


def _snapped_own(
    own: NDArray[np.float64],
    dd: NDArray[np.float64],
    off: NDArray[np.bool_],
    a: NDArray[np.float64],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    plateau: float,
) -> NDArray[np.bool_]:
    """Which of the unsure pixels ``(ys, xs)`` take 0 or the plateau for their own opacity.

    A pixel whose own opacity counts in this frame (``off``: digits that come and go), with the
    contrast to say it, is a stroke's inside or clear of all strokes when it and its four
    neighbours are on one side of this frame's cover (its own opacity, or the one this frame
    uses (``a``) for the sure pixels, above half the plateau); there, within ``_LOCAL_SNAP`` of
    the plateau it is covered at the plateau and within that of 0 it is clear. The projection on
    the line from the neighbours' estimate to the overlay's colour takes the background's
    component along that line from the neighbours (an 80 % digit's: 5x that error in the
    recovery), which the snap leaves to the frame. On a stroke's edge the coverage is partial
    (anti-aliased) and the projection stays.
    """
    cover = a > 0.5 * plateau
    cover[ys, xs] = own > 0.5 * plateau
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    c8 = cover.view(np.uint8)
    inside = (cv2.dilate(c8, cross) == cv2.erode(c8, cross))[ys, xs]
    near_end = (own < _LOCAL_SNAP * plateau) | (own > (1.0 - _LOCAL_SNAP) * plateau)
    return cast(NDArray[np.bool_], off[ys, xs] & (dd > _MIN_CONTRAST**2) & inside & near_end)


@dataclass(frozen=True)
class _BlendFit:
    a: NDArray[np.float32]  # (h, w) opacity
    colour: NDArray[np.float32]  # (3,) the overlay's RGB
    plateau: float  # the overlay's opacity inside (0 when none was found)
    weight: NDArray[np.float32]  # (h, w) weight of the recovered frame against the fill
    var_rec: NDArray[np.float32]  # (h, w) expected squared error of the recovery (per channel)
    var_fill: NDArray[np.float32]  # (h, w) ... and of the fill
    # (h, w) the region's pixels no sampled frame shows covered (None: not asked; then those the
    # fit calls clear)
    clear: NDArray[np.bool_] | None = None
    # (h, w) the region's pixels the overlay covers in some frames only (a running timestamp's
    # digits, :func:`_changing`); None: not asked
    changing: NDArray[np.bool_] | None = None
    # the frames' noise measured on an opaque overlay's inside, the larger of over time and
    # across (:func:`_opaque_noise`; 0 when not measured): above _LOSSY_NOISE the frames are
    # lossy there and the fill is kept
    measured_noise: float = 0.0


def _accumulate(
    sums: dict[str, NDArray[np.float64]],
    i: NDArray[np.float64],
    f: NDArray[np.float64],
    weight: NDArray[np.float64] | None = None,
) -> None:
    """Add one frame ``i`` and its fill ``f`` to the per-pixel sums of i, f, i*i, i*f and f*f,
    each term times ``weight`` ((h, w, 1)) when given."""
    wi, wf = (i, f) if weight is None else (weight * i, weight * f)
    sums["i"] += wi
    sums["f"] += wf
    sums["ii"] += wi * i
    sums["if"] += wi * f
    sums["ff"] += wf * f


def _own_opacity(
    i: NDArray[np.float64], f: NDArray[np.float64], colour: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per pixel, the opacity that puts ``i`` on the line from ``f`` to ``colour`` (clipped to
    [0, 1]), and ``|colour - f|^2`` (RGB)."""
    d = colour.astype(np.float64) - f
    dd = _channel_sum(d * d)
    return np.clip(_channel_sum((i - f) * d) / np.maximum(dd, 1e-9), 0.0, 1.0), dd


def _frame_opacity(
    i: NDArray[np.float64], f: NDArray[np.float64], colour: NDArray[np.float32]
) -> NDArray[np.float64]:
    """One frame's own opacity per pixel (NaN where overlay and fill are too alike to tell)."""
    own, dd = _own_opacity(i, f, colour)
    return np.where(dd > _MIN_CONTRAST**2, own, np.nan)


def _channel_totals(s: dict[str, NDArray[np.float64]]) -> dict[str, NDArray[np.float64]]:
    """The sums' products summed over the channels, per pixel (what the fits reuse for every
    colour they try)."""
    return {k: _channel_sum(s[k]) for k in ("ii", "if", "ff")}


def _channel_sum(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``x.sum(-1)`` over a trailing axis of 3: the same numbers, added in the same order (NumPy's
    reduction over so short an axis is several times slower)."""
    return x[..., 0] + x[..., 1] + x[..., 2]


def _dot_colour(colour: NDArray[np.floating], x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(colour * x).sum(-1)``: each pixel's RGB dot product with one colour (the same numbers,
    see :func:`_channel_sum`)."""
    c0, c1, c2 = (np.float64(v) for v in colour)
    return cast(NDArray[np.float64], c0 * x[..., 0] + c1 * x[..., 1] + c2 * x[..., 2])


def _opacity_given_colour(
    s: dict[str, NDArray[np.float64]],
    n: NDArray[np.float64],
    colour: NDArray[np.float64],
    totals: dict[str, NDArray[np.float64]] | None = None,
) -> NDArray[np.float64]:
    """Least-squares ``a`` per pixel of ``I - F = a (W - F)`` over the frames, for ``W``
    (``totals``: :func:`_channel_totals` of ``s``, when already at hand)."""
    t = _channel_totals(s) if totals is None else totals
    ww = float((colour * colour).sum())
    wf = _dot_colour(colour, s["f"])
    num = _dot_colour(colour, s["i"]) - t["if"] - wf + t["ff"]
    den = n * ww - 2 * wf + t["ff"]
    return np.clip(num / np.maximum(den, 1e-9), 0.0, 1.0)


def _residual(
    s: dict[str, NDArray[np.float64]],
    n: NDArray[np.float64],
    a: NDArray[np.float64],
    colour: NDArray[np.float64],
    totals: dict[str, NDArray[np.float64]] | None = None,
) -> NDArray[np.float64]:
    """Per pixel, the weighted sum over frames of ``|I - a W - (1 - a) F|^2`` (RGB)."""
    t = _channel_totals(s) if totals is None else totals
    b = 1.0 - a
    ww = float((colour * colour).sum())
    r = (
        t["ii"]
        - 2 * a * _dot_colour(colour, s["i"])
        - 2 * b * t["if"]
        + n * a * a * ww
        + 2 * a * b * _dot_colour(colour, s["f"])
        + b * b * t["ff"]
    )
    return np.maximum(r, 0.0)


def _fit_blend(
    s: dict[str, NDArray[np.float64]],
    n: NDArray[np.float64],
    region: NDArray[np.bool_],
    noise: float,
    max_opacity: float,
    plain: dict[str, NDArray[np.float64]],
    frames: int,
    pairs: NDArray[np.float64] | None = None,
    looks: list[NDArray[np.uint8]] | None = None,
    extremes: tuple[NDArray[np.uint8], NDArray[np.uint8], float] | None = None,
) -> _BlendFit:
    """The blend's opacity per pixel and colour, with the weights of recovery against fill.

    Fitted per pixel over time (:func:`_temporal_fit`). Where the scene under the overlay is
    still (the frames there change by at most ``_SINGLE_STILL_STD`` over ``frames`` >=
    ``_SINGLE_MIN_FRAMES``), that fit calls the overlay opaque (nothing would be un-blended) or
    the fill is mostly invented, and one opacity and colour for the whole overlay explain the
    frames as clearly semi-transparent (:func:`_single_opacity_fit`), clearly below the fit over
    time's plateau (``_SINGLE_BELOW``) unless that one is opaque, the latter is taken: over a
    still scene the frames say nothing per pixel, and the fit over time reads the fill's change
    as opacity. It errs upwards there: frames that stay put beside a fill that changes are
    explained best by an opacity that damps the fill's change (a 30 % ring over schoolgirls'
    still background: 0.98; a 30 % ring over breakdance's: 0.76). Where the single fit declines
    (a running timestamp) but the fit over time calls the overlay opaque while parts of it vary
    more than an opaque overlay's pixels can (:func:`_changing`), the outline's plateau
    and colour are taken (breakdance's 80 % timestamp: 0.794 for 0.80).

    ``s`` and ``n``: the sums over the frames weighted by how much the engine vouches for each
    fill pixel, and those weights' sums; ``plain`` the same sums unweighted, over ``frames``;
    ``looks``: a sample of the frames' boxes, for the rim's opacity told by its clear neighbours
    (:func:`_with_neighbour_opacity`).
    """
    a, colour = _temporal_fit(s, n, region, noise)
    every = (plain, np.full(region.shape, float(frames)))
    # The paths below are chosen on the fits' plateaus, which the neighbours' opacity
    # (``looks``) does not change: that costlier step runs once, on the path taken.
    finish = partial(
        _finish_fit, s, n, region, a, colour, noise, max_opacity, every=every, extremes=extremes
    )
    fit = finish()

    def from_outline() -> partial[_BlendFit] | None:
        """The fit finished with the plateau and colour the overlay's outline gives (the
        opacity per pixel given that colour); None where it gives no blend or one too opaque
        to un-blend."""
        assert pairs is not None
        outline = _outline_fit(plain, pairs, frames, region)
        if outline is None or outline[0] > max_opacity - _OUTLINE_MARGIN:
            return None
        plateau, colour = outline
        a = _opacity_given_colour(s, n, colour) * region
        return partial(
            _finish_fit,
            s,
            n,
            region,
            a,
            colour,
            noise,
            max_opacity,
            plateau=plateau,
            smooth_inside=True,
            every=every,
            extremes=extremes,
        )

    if (
        pairs is not None
        and frames >= _SINGLE_MIN_FRAMES
        and _fill_is_poor(n / frames, plain, frames, region, (a, max_opacity))
    ):
        # The fill is mostly invented, but the scene under and around the overlay changes: the
        # overlay's outline says its plateau and colour better than the fill does.
        outlined = from_outline()
        if outlined is not None:
            finish = outlined
            fit = finish()
    opaque = fit.plateau >= max_opacity
    invented = _mostly_invented(n / frames, region)
    if (opaque or invented) and frames >= _SINGLE_MIN_FRAMES:
        # The frames' own change under the overlay (RMS over the channels, median pixel).
        std = np.sqrt(_frame_moments(plain, frames)[1].mean(-1))
        if float(np.median(std[region])) <= _SINGLE_STILL_STD:
            # The mean frames as the engine vouches for them (a fill it invented counts little);
            # the fill's expected error then from every frame it will stand in for.
            single = _single_opacity_fit(
                s["i"] / n[..., None], s["f"] / n[..., None], region, std <= _SINGLE_STILL_STD
            )
            if (
                single is not None
                and single[2] <= max_opacity - _SINGLE_MARGIN
                and (opaque or single[2] <= fit.plateau - _SINGLE_BELOW)
            ):
                finish = partial(
                    _finish_fit,
                    *every,
                    region,
                    single[0],
                    single[1],
                    noise,
                    max_opacity,
                    extremes=extremes,
                )
                fit = finish()
            elif (
                opaque
                and single is None
                and pairs is not None
                and fit.changing is not None
                and float(fit.changing[region].mean()) >= _CHANGING_SHARE
            ):
                # Called opaque over a still scene, but parts of it vary more than an opaque
                # overlay's pixels can (:func:`_changing`, against the fit's opacity): a running
                # timestamp (the single fit declines it), or an overlay that lets the scene's
                # little change through; the outline fit tells the blend from the edges where
                # that change meets the overlay's. An opaque overlay over a still scene has no
                # such part and stays as it is.
                outlined = from_outline()
                if outlined is not None:
                    finish = outlined
                    fit = finish()
    return finish(looks=looks) if looks else fit


_BOX_MARGIN = 6  # px of scene kept around the overlay's region
_PAIR_OFFSETS = ((0, 2), (2, 0), (2, 2), (2, -2))  # the two sides of an edge, 2 px apart
_POOR_VOUCHED = 0.5  # a fill the engine vouches for less than this (median) is mostly invented
_OUTLINE_MIN_STD = 10.0  # the scene around the overlay changes by more than this (RMS levels)
_OUTLINE_MARGIN = 0.05  # the outline's plateau is taken up to this far below max_opacity
_OPAQUE_STILL_SHARE = 0.25  # an overlay this much of which is still (< _STILL_STD) is opaque
_LOCAL_FILL_VAR = 25.0  # a fill expected this far off (squared levels) or less is trusted ...
_CLEAR_OPACITY = 0.03  # ... a pixel fitted below this is clear (unless a look shows it covered)
_LOCAL_SNAP = 0.3  # ... where this frame's own opacity counts, within this share of the plateau
# of 0 or the plateau, not on an edge of what this frame covers, it is 0 or the plateau
_SPREAD_SIGMAS = (1.5, 4.5, 13.5)  # px: the known neighbours averaged into an unsure pixel
_LOOKS_MAX = 48  # frames' boxes kept (evenly over the clip) for _with_neighbour_opacity ...
_LOOKS_BYTES = 24 << 20  # ... holding at most this many bytes (large overlays keep fewer)
_LOOKS_AGREE = 0.15  # ... used where the looks agree on a pixel's opacity within this (RMS)
_SEEN_COVERED = 0.6  # ... and a pixel shown this opaque in any of them is not clear there
_VAR_FLOOR = 1e-6  # no estimate of a pixel's opacity is surer than this (variance)
_OWN_ABOVE = 0.1  # an opacity told by one frame (or the mean) is capped this above the plateau
_MEAN_FRAME_MIN_PX = 20  # inside pixels needed to calibrate the mean frame's opacity ...
_MEAN_FRAME_MAX_PLATEAU = 0.95  # ... whose plateau is below this (its inside un-blended)
_CHI2_MEDIAN = 0.4549  # the median of a chi-square with one degree of freedom


def _frame_moments(
    plain: dict[str, NDArray[np.float64]], frames: int | NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per pixel and channel, the frames' mean and variance over time, from the plain sums
    (``frames``: their count, or per pixel (h, w, 1))."""
    mean = plain["i"] / frames
    return mean, np.maximum(plain["ii"] / frames - mean * mean, 0.0)


def _most_common(values: NDArray[np.floating], lo: float, hi: float, bins: int) -> float:
    """The centre of the fullest of ``bins`` histogram bins of ``values`` over [lo, hi]."""
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    k = int(hist.argmax())
    return float(edges[k] + edges[k + 1]) / 2


def _accumulate_pairs(pairs: NDArray[np.float64], i: NDArray[np.float64]) -> None:
    """Add one frame's products of each pixel with the pixels 2 px away (RGB dot) to ``pairs``."""
    h, w = i.shape[:2]
    for k, (dy, dx) in enumerate(_PAIR_OFFSETS):
        xa, xb = max(0, -dx), w - max(0, dx)
        pairs[k, : h - dy, xa:xb] += _channel_sum(i[: h - dy, xa:xb] * i[dy:, xa + dx : xb + dx])


def _mostly_invented(vouched: NDArray[np.float64], region: NDArray[np.bool_]) -> bool:
    """Whether the engine vouches for less than ``_POOR_VOUCHED`` of the fill under the overlay
    (median over the region of the per-pixel share of the frames it vouches for)."""
    return float(np.median(vouched[region])) < _POOR_VOUCHED


def _fill_is_poor(
    vouched: NDArray[np.float64],
    plain: dict[str, NDArray[np.float64]],
    frames: int,
    region: NDArray[np.bool_],
    fitted: tuple[NDArray[np.float64], float],
) -> bool:
    """Whether the fill is mostly invented while the scene under and around the overlay changes.

    The fit over time reads an invented fill's errors as opacity (an 80 % timestamp over a
    scene the engine vouches for a quarter of: 0.86 for 0.80, colour (216, 47, 48) for (220,
    40, 40)). The fit from the outline needs the scene to change under the overlay (more than a
    still scene's ``_SINGLE_STILL_STD``) and around it (``_OUTLINE_MIN_STD``, in the box's
    margin); over a still scene the outline says nothing and the single-opacity fit is the one
    (a 30 % ring over schoolgirls' still background: 26.4 dB with it, 19.1 with the outline's).
    Nor for an overlay a quarter of which shows its own colour in every frame (an opaque one:
    a running timestamp's fixed digits; its changing digits' edges gave the outline a plateau
    of a semi-transparent overlay, 29.3 -> 19.3 dB on motocross-jump at 854x480). On lossy
    frames that overlay's own colour is not still (H.264 rings and bleeds by a few levels), so
    the fit over time (``fitted``: its opacity per pixel and ``max_opacity``) also says it: an
    overlay a quarter of whose pixels the engine vouches for in at least half the frames fitted
    opaque there, against footage, is opaque too (the same timestamp at CRF 18: its first 15
    frames were un-blended at the outline's 81 % and left 60-90 levels off, then filled).
    """
    if not _mostly_invented(vouched, region) or region.all():
        return False
    spread = np.sqrt(_frame_moments(plain, frames)[1]).mean(-1)
    inside = spread[region]
    return (
        float(np.median(spread[~region])) > _OUTLINE_MIN_STD
        and float(np.median(inside)) > _SINGLE_STILL_STD
        and float((inside < _STILL_STD).mean()) < _OPAQUE_STILL_SHARE
        and not _opaque_against_footage(vouched, region, *fitted)
    )


def _opaque_against_footage(
    vouched: NDArray[np.float64], region: NDArray[np.bool_], a: NDArray[np.float64], top: float
) -> bool:
    """Whether at least ``_OPAQUE_STILL_SHARE`` of the overlay's pixels that the engine vouches
    for in half the frames or more (at least ``_NOISE_MIN_PX`` of them) are fitted ``top`` or
    more opaque: there the fill is footage, and the fit over time against it is sure."""
    sure = region & (vouched >= _POOR_VOUCHED)
    if int(sure.sum()) < _NOISE_MIN_PX:
        return False
    return float((a[sure] >= top).mean()) >= _OPAQUE_STILL_SHARE


def _outline_fit(
    plain: dict[str, NDArray[np.float64]],
    pairs: NDArray[np.float64],
    frames: int,
    region: NDArray[np.bool_],
) -> tuple[float, NDArray[np.float64]] | None:
    """The overlay's plateau opacity and colour from its outline, with no fill at all.

    Across a semi-transparent overlay's edge the inside is the outside damped, ``(1 - a)``
    times its change, following it in time (the same scene lies under both sides, 2 px apart),
    and lifted towards ``W`` (``mean_in = (1 - a) mean_out + a W``): the detection's blend test
    (:func:`_blend_evidence`), here on the per-pixel sums over the frames. The edges are where
    the frames' spread over time jumps; each one's two sides, a pixel either side along the
    jump, give a gain and a colour where they follow each other (correlation over time
    > ``_SIDE_CORR``); the plateau is the most common gain's, if the edges agree on it (the
    interquartile range of ``1 - a`` within ``_BLEND_GAIN_IQR``). None otherwise.
    Returns ``(plateau, colour)``.
    """
    t = float(frames)
    mean, var_c = _frame_moments(plain, frames)  # (h, w, 3)
    var = var_c.sum(-1)  # RGB
    spread = np.sqrt(var).astype(np.float32)
    gx = cv2.Sobel(spread, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(spread, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    near = cv2.dilate(region.view(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if not near.any():
        return None
    strong = near & (mag >= np.percentile(mag[near], 80)) & (mag > 0)
    strong[:1] = strong[-1:] = False
    strong[:, :1] = strong[:, -1:] = False
    ys, xs = np.nonzero(strong)
    if ys.size < _MIN_BLEND_EDGES:
        return None
    angle = np.arctan2(gy[ys, xs], gx[ys, xs])  # towards the changing side
    step = np.rint(angle / (np.pi / 4)).astype(int) % 8
    uy = np.array([0, 1, 1, 1, 0, -1, -1, -1])[step]
    ux = np.array([1, 1, 0, -1, -1, -1, 0, 1])[step]
    py, px, qy, qx = ys - uy, xs - ux, ys + uy, xs + ux  # p still side, q changing side
    # Each pair's product sum: pairs[k] holds pixel (y, x) with (y, x) + _PAIR_OFFSETS[k].
    first_y, first_x = np.minimum(py, qy), np.where(py <= qy, px, qx)
    oy, ox = np.abs(qy - py), np.where(py <= qy, qx - px, px - qx)
    k = np.select(
        [(oy == 0) & (ox == 2), (oy == 2) & (ox == 0), (oy == 2) & (ox == 2)], [0, 1, 2], 3
    )
    first_x = np.where((oy == 0) & (ox == -2), first_x - 2, first_x)  # (0, -2): the pair reversed
    k = np.where((oy == 0) & (ox == -2), 0, k)
    pq = pairs[k, first_y, first_x] / t - (mean[py, px] * mean[qy, qx]).sum(-1)
    sp, sq = np.sqrt(var[py, px]), np.sqrt(var[qy, qx])
    corr = pq / np.maximum(sp * sq, 1e-6)
    gain = sp / np.maximum(sq, 1e-6)
    ok = (corr > _SIDE_CORR) & (gain > 0.05) & (gain < _DAMP_MAX) & (sq > _SIDE_STD)
    if ok.sum() < _MIN_BLEND_EDGES:
        return None
    g = gain[ok]
    agree = np.abs(g - _most_common(g, 0.05, _DAMP_MAX, 36)) < 0.1
    g25, g75 = np.percentile(g[agree], (25, 75))
    if agree.sum() < _MIN_BLEND_EDGES or g75 - g25 > _BLEND_GAIN_IQR:
        return None
    ga = g[agree][:, None]
    m_in, m_out = mean[py, px][ok][agree], mean[qy, qx][ok][agree]
    colour = np.median((m_in - ga * m_out) / np.maximum(1.0 - ga, 0.05), axis=0)
    return 1.0 - float(np.median(g[agree])), np.clip(colour, 0.0, 255.0)


def _single_opacity_fit(
    mi: NDArray[np.float64],
    mf: NDArray[np.float64],
    region: NDArray[np.bool_],
    still: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float] | None:
    """One opacity ``a`` and one colour ``W`` for the overlay's inside, from its mean frame
    ``mi`` and the fill's ``mf`` (both (h, w, 3)).

    ``mean I = a W + (1 - a) mean F`` over the region's pixels: for each ``a`` on a grid (0.01
    apart) the best ``W`` is closed form and so is the summed squared residual; the best ``a``
    wins. The scene varying along the overlay (under its different parts) is what separates
    ``a`` from ``W``, so this needs no change over time. The anti-aliased rim, whose opacity is
    lower, is dropped over a few rounds (pixels whose own opacity given ``W`` is not within half
    of ``a``), and gets its own opacity, given ``W``, at most ``a``; the body (2 px or more inside
    the region, ``still`` when given, unless its own opacity is below ``_SINGLE_DEEP`` of ``a``)
    gets ``a``.

    Returns:
        The opacity per pixel (the inside at ``a``), ``W`` and ``a``; None for a region too small,
        a scene under it too uniform to tell ``a`` from ``W`` (``_SINGLE_MIN_SPREAD``), or pixels
        that do not share an opacity (``_SINGLE_AGREE``).
    """
    # What separates a from W is the scene varying under the overlay: a uniform one fits any a.
    if float(np.sqrt(mf[region].var(axis=0).mean())) < _SINGLE_MIN_SPREAD:
        return None
    use = region.copy()
    grid = np.arange(0.05, 0.951, 0.01)
    best_a, colour = 0.0, np.zeros(3)
    for _ in range(_SINGLE_ROUNDS):
        if int(use.sum()) < 20:
            return None
        i, f = mi[use], mf[use]
        # The residual sum(|I - a W - (1 - a) F|^2) for every a at once: with I and F centred
        # on their means m_i, m_f it is sum(|I' - (1 - a) F'|^2) + N |m_i - a W - (1 - a) m_f|^2
        # (the cross terms sum to zero), W being the best colour for a, clipped to [0, 255].
        m_i, m_f = i.mean(0), f.mean(0)
        ic, fc = i - m_i, f - m_f
        s_ii, s_if, s_ff = float((ic * ic).sum()), float((ic * fc).sum()), float((fc * fc).sum())
        b = 1.0 - grid
        w_all = np.clip((m_i[None] - b[:, None] * m_f[None]) / grid[:, None], 0.0, 255.0)
        off = m_i[None] - grid[:, None] * w_all - b[:, None] * m_f[None]
        r = s_ii - 2 * b * s_if + b * b * s_ff + len(i) * (off * off).sum(1)
        k = int(np.argmin(r))
        best_a, colour = float(grid[k]), w_all[k]
        own, _ = _own_opacity(mi, mf, colour)  # each pixel's, in the mean frame, given W
        use = region & (np.abs(own - best_a) < 0.5 * best_a)
    # A static overlay's inside agrees with its one opacity; a running timestamp's mean frame
    # holds every digit at a share of the time (2026-12-05, 432x240: 32-34 % of a 30 % ring's
    # region within a quarter of the fitted opacity, 11-14 % of two 80 % timestamps').
    if float((region & (np.abs(own - best_a) < 0.25 * best_a)).sum()) < _SINGLE_AGREE * float(
        region.sum()
    ):
        return None
    own = np.clip(own, 0.0, best_a) * region
    inside = cv2.erode((region & (own > 0.8 * best_a)).astype(np.uint8), np.ones((3, 3), np.uint8))
    # Each pixel's own opacity is read against the mean fill, which is invented here and off
    # over whole patches. Two pixels or more inside the region lies the overlay's body (this fit
    # is taken only for a region that hugs its overlay, see _SINGLE_AGREE), unless the pixel's
    # own opacity says clearly otherwise.
    deep = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if still is not None:  # a pixel whose frames change is no still overlay's body (digits)
        deep &= still
    body = inside.astype(bool) | (deep & (own > _SINGLE_DEEP * best_a))
    return np.where(body, best_a, own), colour, best_a


def _temporal_fit(
    s: dict[str, NDArray[np.float64]],
    n: NDArray[np.float64],
    region: NDArray[np.bool_],
    noise: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Opacity per pixel and the overlay's colour, alternating the two closed forms over the
    frames from several starting colours (the best residual wins)."""
    starts = [np.array(c, np.float64) * 255 for c in np.ndindex(2, 2, 2)]
    starts.append(np.full(3, 128.0))
    # And the colour of the stillest pixels against a moving fill: an opaque overlay's own.
    mi, mf = s["i"] / n[..., None], s["f"] / n[..., None]
    var_i = _channel_sum(np.maximum(s["ii"] / n[..., None] - mi * mi, 0.0))
    var_f = _channel_sum(np.maximum(s["ff"] / n[..., None] - mf * mf, 0.0))
    moving = region & (var_f > 4 * noise**2 + 1.0)
    if moving.sum() >= 10:
        ratio = var_i[moving] / var_f[moving]
        still = ratio <= np.quantile(ratio, 0.1)
        starts.append(mi[moving][still].mean(axis=0))
    best: tuple[float, NDArray[np.float64], NDArray[np.float64]] | None = None
    # Every step is per pixel, and only the region's pixels count: the fit runs on them alone.
    s_r = {k: v[region] for k, v in s.items()}
    n_r, i_r, f_r = n[region], s_r["i"], s_r["f"]
    totals = _channel_totals(s_r)
    for colour in starts:
        wa = np.zeros(n_r.shape)
        for _ in range(_FIT_ROUNDS):
            wa = _opacity_given_colour(s_r, n_r, colour, totals)
            if float((n_r * wa * wa).sum()) < 1e-6:
                break
            num = (wa[:, None] * (i_r - (1 - wa)[:, None] * f_r)).sum(0)
            colour = np.clip(num / float((n_r * wa * wa).sum()), 0.0, 255.0)
        err = float(_residual(s_r, n_r, wa, colour, totals).sum())
        if best is None or err < best[0]:
            best = (err, wa, colour)
    assert best is not None
    a = np.zeros(region.shape)
    a[region] = best[1]
    return a, best[2]


def _spreader(
    weight: NDArray[np.float32], ys: NDArray[np.intp], xs: NDArray[np.intp]
) -> Callable[[NDArray[np.float32]], NDArray[np.float64]]:
    """Normalised Gaussian averaging of images (h, w, 3) weighted by ``weight`` (h, w; 0 where
    unknown), at the pixels ``ys, xs``: the known neighbours' mean within about 1.5 px, wider
    (4.5, 13.5 px) where none is that near. The weight's blurs, and the scale each point takes,
    are taken once; each image given to the function returned has only its own blurs."""
    scale = np.full(ys.size, -1)
    dens = []
    for k, sigma in enumerate(_SPREAD_SIGMAS):
        den = cv2.GaussianBlur(weight, (0, 0), sigma)[ys, xs]
        scale[(scale < 0) & (den > 1e-3)] = k
        dens.append(den)
        if (scale >= 0).all():
            break
    used = [(k, np.flatnonzero(scale == k)) for k in range(len(dens))]

    def spread(image: NDArray[np.float32]) -> NDArray[np.float64]:
        values = image * weight[..., None]
        out = np.zeros((ys.size, 3), np.float64)
        for k, at in used:
            if at.size:
                num = cv2.GaussianBlur(values, (0, 0), _SPREAD_SIGMAS[k])[ys[at], xs[at]]
                out[at] = num / dens[k][at, None]
        return out

    return spread


def _clear_in_every_look(
    outside: NDArray[np.bool_],
    candidates: NDArray[np.bool_],
    colour: NDArray[np.float64],
    looks: list[NDArray[np.uint8]],
) -> NDArray[np.bool_]:
    """``outside`` and the ``candidates`` that no look shows covered: in each look the
    background at a candidate is told by ``outside`` around it, and a candidate whose own
    opacity against it exceeds ``_SEEN_COVERED`` in a look where the overlay's colour stands out
    is not clear."""
    ys, xs = np.nonzero(candidates)
    known = outside.copy()
    if ys.size == 0:
        return known
    told = _spreader(outside.astype(np.float32), ys, xs)
    col = colour.astype(np.float64)
    covered = np.zeros(ys.size, bool)
    for look in looks:
        img = look.astype(np.float32)
        own, dd = _own_opacity(img[ys, xs].astype(np.float64), told(img), col)
        covered |= (dd >= _MIN_CONTRAST**2) & (own > _SEEN_COVERED)
    known[ys[~covered], xs[~covered]] = True
    return known


def _with_neighbour_opacity(
    a: NDArray[np.float64],
    var_a: NDArray[np.float64],
    colour: NDArray[np.float64],
    region: NDArray[np.bool_],
    inside: NDArray[np.bool_],
    looks: list[NDArray[np.uint8]],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """``a`` where it is fitted per pixel (the region but its snapped ``inside``), combined with
    a second estimate that does not lean on the fill: in each sampled frame the background at
    such a pixel is told by the pixels around it that the overlay leaves clear (outside the
    region, or fitted below ``_CLEAR_OPACITY`` and shown covered in no look:
    :func:`_clear_in_every_look`; averaged by :func:`_spreader`), and the opacity is the
    least-squares slope of ``I - J = a (W - J)`` over the frames. Where the fill is
    invented (a clip too short for the scene to uncover the overlay) the per-pixel fit reads the
    fill's errors as opacity, worst on the anti-aliased rim, whose errors the recovery amplifies
    by ``1 / (1 - a)``; the neighbours are a pixel or two away there. The two are combined by
    their variances (each slope's over the frames), which the recovery's weight then counts.

    Returns:
        The opacity, its variance, and the region's pixels that are clear in every look.
    """
    known = _clear_in_every_look(~region, region & (a < _CLEAR_OPACITY), colour, looks)
    ys, xs = np.nonzero(region & ~inside & ~known)
    if ys.size == 0:
        return a, var_a, known & region
    told = _spreader(known.astype(np.float32), ys, xs)
    col = colour.astype(np.float64)
    num = np.zeros(ys.size)
    den = np.zeros(ys.size)
    err = np.zeros(ys.size)
    first = np.zeros((ys.size, 3))
    second = np.zeros((ys.size, 3))
    # Each look's own opacity, where the overlay's colour stands out from the background told
    # (count, sum, sum of squares): whether the looks agree on it.
    seen = np.zeros(ys.size)
    own_sum = np.zeros(ys.size)
    own_sq = np.zeros(ys.size)
    for look in looks:
        img = look.astype(np.float32)
        est = told(img)
        e, d = img[ys, xs] - est, col - est
        ed, dd = _channel_sum(e * d), _channel_sum(d * d)
        num += ed
        den += dd
        err += _channel_sum(e * e)
        first += est
        second += est * est
        stands_out = dd >= _MIN_CONTRAST**2
        one = np.where(stands_out, ed / np.maximum(dd, 1e-9), 0.0)
        seen += stands_out
        own_sum += one
        own_sq += one * one
    k = len(looks)
    own = np.clip(num / np.maximum(den, 1e-9), 0.0, 1.0)
    # The slope's misfit: the looks' squared departures from it, weighted by their contrast.
    misfit = np.maximum(err - 2 * own * num + own * own * den, 0.0) / np.maximum(den, 1e-9)
    # Only where the scene around changes (over a still one the neighbours' guess is one guess,
    # not a fit) and the looks agree on the opacity, where it stands out in most of them (where
    # they do not, the overlay changes there: digits that come and go).
    moving = _channel_sum(second / k - (first / k) ** 2) / 3 >= _OUTLINE_MIN_STD**2
    mean_own = own_sum / np.maximum(seen, 1)
    agree = own_sq / np.maximum(seen, 1) - mean_own * mean_own < _LOOKS_AGREE**2
    use = moving & agree & (seen >= 0.5 * k)
    ys, xs, own = ys[use], xs[use], own[use]
    var_own = np.maximum(misfit[use] / k, _VAR_FLOOR)
    var_fit = np.maximum(var_a[ys, xs], _VAR_FLOOR)
    a, var_a = a.copy(), var_a.copy()
    a[ys, xs] = (a[ys, xs] * var_own + own * var_fit) / (var_fit + var_own)
    var_a[ys, xs] = var_fit * var_own / (var_fit + var_own)
    return a, var_a, known & region


def _finish_fit(
    s: dict[str, NDArray[np.float64]],
    n: NDArray[np.float64],
    region: NDArray[np.bool_],
    a: NDArray[np.float64],
    colour: NDArray[np.float64],
    noise: float,
    max_opacity: float,
    *,
    plateau: float | None = None,
    smooth_inside: bool = False,
    every: tuple[dict[str, NDArray[np.float64]], NDArray[np.float64]] | None = None,
    looks: list[NDArray[np.uint8]] | None = None,
    extremes: tuple[NDArray[np.uint8], NDArray[np.uint8], float] | None = None,
) -> _BlendFit:
    """The fit's plateau (its inside snapped to it) and the weight of recovery against fill.

    ``plateau``: the plateau when known otherwise (:func:`_outline_fit`); by default the most
    common opacity of ``a``. ``smooth_inside``: ``a`` is noisy from pixel to pixel (fitted
    against an invented fill), so the inside is told by its 5x5 median, up to 0.2 above the
    plateau.
    """
    # The overlay's plateau: the most common opacity; its inside (not the rim) snaps to it.
    vals = a[region & (a > 0.08)]
    a_fitted = a  # before the inside snaps: what the fit says there (_with_mean_frame_opacity)
    inside = np.zeros_like(region)
    if vals.size > 20:
        if plateau is None:
            centre = _most_common(vals, 0.05, 1.0, 40)
            near = vals[np.abs(vals - centre) < 0.08]
            plateau = float(np.median(near)) if near.size else float(centre)
        told = cv2.medianBlur(a.astype(np.float32), 5).astype(np.float64) if smooth_inside else a
        above = 0.2 if smooth_inside else 0.1
        close = region & (told > plateau * (1 - _SNAP)) & (told < min(plateau + above, 1.0))
        inside = cv2.erode(close.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        a = np.where(inside, plateau, a)
    if plateau is None:
        plateau = 0.0
    # The frames' mean and variance over time, per pixel and channel: one pass for both the
    # noise on the opaque inside and the changing pixels' test.
    sums, counts = every or (s, n)
    moments = _frame_moments(sums, counts[..., None])
    over_time, across = _opaque_noise(
        moments, region & (a_fitted >= max_opacity), plateau, max_opacity
    )
    measured = max(over_time, across)
    contrast = (
        n * float((colour * colour).sum()) - 2 * (colour * s["f"]).sum(-1) + s["ff"].sum(-1)
    ) / (3 * n)
    resid = _residual(s, n, a, colour) / (3 * n)
    # The per-pixel fit's uncertainty (its slope's variance over the frames); the neighbours'
    # estimate joins it where the scene moves.
    var_a = np.where(inside, 0.0, resid / np.maximum(contrast * n, 1e-9))
    clear = None
    if looks:
        a, var_a, clear = _with_neighbour_opacity(a, var_a, colour, region, inside, looks)
    # The frames' noise as measured where it is (an opaque overlay's inside on lossy frames,
    # whose ringing would otherwise pass for a digit that comes and goes: parkour's opaque text
    # at CRF 18, 432x240, with other overlays, was taken for an 83 % running timestamp), and
    # never below the noise configured.
    changing = _changing(_channel_sum(moments[1]), a, region, max(noise, over_time))
    if looks:
        if every is not None:
            var_fitted = _residual(s, n, a_fitted, colour) / (
                3 * n * np.maximum(contrast * n, 1e-9)
            )
            a, var_a = _with_mean_frame_opacity(
                a,
                var_a,
                (a_fitted, var_fitted),
                colour,
                plateau,
                region,
                inside,
                clear,
                changing,
                every[0]["i"] / every[1][..., None],
            )
        resid = _residual(s, n, a, colour) / (3 * n)
    if extremes is not None and plateau < max_opacity:
        # A pixel whose fitted opacity some frame's values rule out (that frame's background
        # would leave [0, 255] by more than the noise) is not under one static blend: the
        # overlay comes and goes there (a running timestamp's digits, where their change is too
        # faint for the test above), or the fit leans on a fill that errs. Each frame's own
        # opacity is used there (Unblender.apply), as on the changing pixels. Not on an opaque
        # overlay: on H.264 frames its sharp edges ring by more than the noise allows, and its
        # pixels taken frame by frame then flicker (parkour's opaque ring at CRF 18: flicker
        # 2.65 -> 9.20).
        changing = changing | (region & (_opacity_ceiling(*extremes, colour) < a))
    # Expected squared errors (per channel): the fill's, from the residual the model leaves;
    # the recovery's, from noise amplified by 1 / (1 - a) and, on the rim, the per-pixel fit.
    b = np.maximum(1.0 - a, 0.05)
    # The fill stands in for every frame, those it invented too: its expected error is the
    # residual over all of them (``every``: the unweighted sums and counts) when given.
    fill_resid = resid if every is None else _residual(*every, a, colour) / (3 * every[1])
    var_fill = fill_resid / (b * b) + 1.0
    var_rec = (noise / b) ** 2 + (var_a + _OPACITY_SD**2) * contrast / (b * b)
    weight = var_fill / (var_fill + var_rec)
    weight *= _fade(max_opacity, a)
    weight *= region
    return _BlendFit(
        a=a.astype(np.float32),
        colour=colour.astype(np.float32),
        plateau=plateau,
        weight=weight.astype(np.float32),
        var_rec=var_rec.astype(np.float32),
        var_fill=var_fill.astype(np.float32),
        clear=clear,
        changing=changing,
        measured_noise=measured,
    )


def _opaque_noise(
    moments: tuple[NDArray[np.float64], NDArray[np.float64]],
    opaque: NDArray[np.bool_],
    plateau: float,
    max_opacity: float,
) -> tuple[float, float]:
    """The frames' noise measured on an opaque overlay's inside, where every frame should show
    its colour exactly: over time and across the inside (0, 0 when the overlay is not opaque
    or fewer than ``_NOISE_MIN_PX`` of its pixels are fitted opaque).

    On lossless frames that is about 0; on an H.264 clip the
    overlay's sharp edges ring and its colour bleeds through the subsampled chroma, by several
    levels (CRF 18 at 432x240: about 2-8 on the bench's opaque overlays, 0 on its PNG frames),
    and the rim's un-blending amplified that by ``1 / (1 - a)``.
    The median over the inside (``opaque``, the pixels fitted at least ``max_opacity``, less a
    pixel all round) of each pixel's spread over the frames (RMS over the channels). An overlay
    too thin for that (text whose strokes are 2-3 px wide leaves fewer than ``_NOISE_MIN_PX``
    such pixels) is measured on all of its opaque pixels: on lossless frames they show its
    colour too (0 on the bench's thin timestamps), on H.264 frames they ring by more
    (scooter-black's timestamp at CRF 18, 432x240: 6-7 levels, where its inside held 12-21
    pixels, and it was un-blended until its 40th frame).
    Across: the median over the inside of each pixel's departure (RMS over the channels) of
    its mean over the frames from the inside's median colour; over a still scene H.264 codes
    the same blocks alike in every frame and the ringing stays put, so the spread over time
    says nothing (drift-chicane's opaque text at CRF 18 with other overlays: 0 over time, 2.7
    across, and un-blended at 31.7 dB against Telea's 40.6; 0 on its PNG frames, and no
    figure of ``bench/overlays.py`` on PNG frames moved).
    """
    if plateau < max_opacity:
        return 0.0, 0.0
    inside = cv2.erode(opaque.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if int(inside.sum()) < _NOISE_MIN_PX:
        inside = opaque
    if int(inside.sum()) < _NOISE_MIN_PX:
        return 0.0, 0.0
    mean, var = moments
    over_time = float(np.sqrt(np.median(var.mean(-1)[inside])))
    m = mean[inside]
    across = float(np.sqrt(np.median(((m - np.median(m, axis=0)) ** 2).mean(-1))))
    return over_time, across


def _opacity_ceiling(
    lo: NDArray[np.uint8], hi: NDArray[np.uint8], slack: float, colour: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Per pixel, the largest opacity of ``colour`` under which every frame seen (per channel
    no darker than ``lo``, no brighter than ``hi``) has a background in [0, 255], within
    ``slack`` levels: ``J = (I - a W) / (1 - a) >= 0`` needs ``a <= I / W``, ``J <= 255`` needs
    ``a <= (255 - I) / (255 - W)``."""
    w = np.asarray(colour, np.float64)
    cap = np.ones(lo.shape[:2], np.float64)
    for c in range(3):
        if w[c] > slack:
            cap = np.minimum(cap, (lo[..., c] + slack) / w[c])
        if w[c] < 255.0 - slack:
            cap = np.minimum(cap, (255.0 - hi[..., c] + slack) / (255.0 - w[c]))
    return cap


def _with_mean_frame_opacity(
    a: NDArray[np.float64],
    var_a: NDArray[np.float64],
    fitted: tuple[NDArray[np.float64], NDArray[np.float64]],
    colour: NDArray[np.float64],
    plateau: float,
    region: NDArray[np.bool_],
    inside: NDArray[np.bool_],
    clear: NDArray[np.bool_] | None,
    changing: NDArray[np.bool_],
    mean: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``a`` on the rim combined with a third estimate: from the mean frame, which does not lean
    on the fill.

    Over the frames the mean is ``a W + (1 - a) mean(J)``, and the background's mean under the
    overlay is known beside every rim pixel: outside and clear of the overlay it is the mean
    frame itself, inside (at the plateau) the mean frame un-blended. Where the scene moves the
    background's mean is smooth, so its neighbours tell it at the rim (:func:`_spreader`), and
    the rim's opacity is the mean frame's pixel on the line from that to the overlay's colour.
    The fit over time reads the fill's errors as opacity; where the fill errs alike in every
    frame (a seam, a misplaced copy carried along) those errors do not average out, and its
    variance (the slope's over the frames) says far less than its error is. Both estimates'
    variances are therefore calibrated on the overlay's inside, whose opacity is known (the
    plateau): each estimate made there as on the rim (the mean-frame one from the pixels
    outside alone), its squared errors over its variances, the median of that ratio scaled to a
    chi-square's (``_CHI2_MEDIAN``). The two are combined on the rim by their calibrated
    variances; the result's variance goes back in the fit's own scale. An overlay parts of which
    come and go (:func:`_changing`, at least ``_CHANGING_SHARE`` of it: a running timestamp) is
    left as it was: its mean frame mixes the covered and the clear looks, and each frame's own
    opacity there leans on the fit's around it (on the bench's 80 % timestamps at 854x480 the
    fixed digits' rims gained nothing and the changing digits lost up to 0.95 dB); so is an
    overlay with no inside to calibrate on or too opaque to un-blend it. The few pixels that
    come and go in a static overlay, and those next to them, are left out.

    Args:
        a, var_a: the opacity per pixel and its variance (the fit's, with the neighbours');
        fitted: the fit over time before the inside snapped, and its variance;
        colour, plateau, region, inside, clear, changing: the fit's;
        mean: the mean frame (unweighted).
    """
    if float(changing[region].mean()) >= _CHANGING_SHARE:
        return a, var_a
    skip = cv2.dilate(changing.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if clear is None:  # not asked: the fit's word
        clear = a < _CLEAR_OPACITY
    outside = (~region | clear) & ~skip
    body = inside & ~skip
    if not 0.0 < plateau < _MEAN_FRAME_MAX_PLATEAU or int(body.sum()) < _MEAN_FRAME_MIN_PX:
        return a, var_a
    yi, xi = np.nonzero(body)
    a_in, var_in, says = _mean_frame_opacity(mean, mean, outside, yi, xi, colour)
    a_fit, var_fit = fitted
    if int(says.sum()) < _MEAN_FRAME_MIN_PX:
        return a, var_a
    # Only where, on the inside, the mean frame's estimate is the nearer to the truth: where the
    # fill is right, the fit over time is exact and stays as it is.
    err_mean = float(np.median(np.abs(a_in[says] - plateau)))
    err_fit = float(np.median(np.abs(a_fit[yi, xi][says] - plateau)))
    if err_mean >= err_fit:
        return a, var_a
    k_mean = _calibration(a_in[says], var_in[says], plateau)
    k_fit = _calibration(a_fit[yi, xi][says], var_fit[yi, xi][says], plateau)
    known = outside | body
    back = mean.copy()
    back[body] = (mean[body] - plateau * colour) / (1.0 - plateau)
    ys, xs = np.nonzero(region & ~known & ~skip)
    if ys.size == 0:
        return a, var_a
    own, var_own, says = _mean_frame_opacity(mean, back, known, ys, xs, colour)
    ys, xs = ys[says], xs[says]
    v_fit = np.maximum(var_a[ys, xs] * k_fit, _VAR_FLOOR)
    v_mean = np.maximum(var_own[says] * k_mean, _VAR_FLOOR)
    a, var_a = a.copy(), var_a.copy()
    own = np.minimum(own[says], plateau + _OWN_ABOVE)
    a[ys, xs] = (a[ys, xs] * v_mean + own * v_fit) / (v_fit + v_mean)
    var_a[ys, xs] = v_fit * v_mean / (v_fit + v_mean) / max(k_fit, _VAR_FLOOR)
    return a, var_a


def _calibration(a: NDArray[np.float64], var: NDArray[np.float64], truth: float) -> float:
    """How many times its variance ``var`` an estimate ``a`` of a known ``truth`` is off
    (squared), at the median, as a chi-square's."""
    ratio = (a - truth) ** 2 / np.maximum(var, _VAR_FLOOR)
    return float(np.median(ratio)) / _CHI2_MEDIAN


def _mean_frame_opacity(
    mean: NDArray[np.float64],
    back: NDArray[np.float64],
    known: NDArray[np.bool_],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    colour: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """The opacity at ``(ys, xs)`` that puts the mean frame there on the line from the
    background (``back``, told by the ``known`` pixels around) to ``colour``; its variance up to
    a scale (the known background's gradient energy nearby over the contrast); and where the
    contrast says it (:data:`_MIN_CONTRAST`)."""
    est = _spreader(known.astype(np.float32), ys, xs)(back.astype(np.float32))
    own, dd = _own_opacity(mean[ys, xs], est, colour)
    near = _energy_near(back.astype(np.float32), known.astype(np.float32), ys, xs, 100.0)
    return own, (near + 1.0) / np.maximum(dd / 3.0, 1e-9), dd > _MIN_CONTRAST**2


def _changing(
    var: NDArray[np.float64],
    a: NDArray[np.float64],
    region: NDArray[np.bool_],
    noise: float,
) -> NDArray[np.bool_]:
    """The region's pixels that the overlay covers in some frames only (a running timestamp's
    digits come and go), from the frames' change over time.

    Under a static overlay a pixel changes as the scene under it does, damped by ``1 - a``; the
    scene's change there is told by the clear pixels around the region (outside it, averaged
    with a Gaussian of ``_CHANGING_SIGMA_PX``). A pixel whose frames vary more than
    ``_CHANGING_RATIO`` times that (plus the noise's share) is not under one static blend. The
    fill's own change would not do as the reference: where it is invented it changes less than
    the scene, and the inside of a static overlay would look as if it came and went (a quarter of
    an 80 % timestamp's fixed digits at 432x240).

    Args:
        var: per pixel, the frames' variance over time summed over the channels
            (:func:`_frame_moments` of the unweighted sums).
        a: the fitted opacity; region: the overlay's pixels; noise: the frames' noise (levels).
    """
    clear = (~region).astype(np.float32)
    reach = cv2.GaussianBlur(clear, (0, 0), _CHANGING_SIGMA_PX)
    around = cv2.GaussianBlur(var.astype(np.float32) * clear, (0, 0), _CHANGING_SIGMA_PX)
    scene = around / np.maximum(reach, 1e-6)
    expected = (1.0 - np.minimum(a, 0.95)) ** 2 * scene + 3.0 * (2.0 * noise) ** 2
    return region & (reach > 1e-3) & (var > _CHANGING_RATIO * expected)
