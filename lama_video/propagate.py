"""Keyframe masks -> a mask on every frame, tracked with optical flow in both directions.

A user marks the object on a few keyframes; this module carries each keyframe mask forward (to
the next keyframe or the end of the clip) and backward (to the previous keyframe or the start).
Where two keyframes bracket a frame, both directions are combined (their union: see
:func:`combine`). The forward track from the first keyframe does not stop at the later ones: it
goes on to the clip's end beside the tracks they restart, and a frame keeps what it covers within
``_CARRY_BAND_PX`` of those (:func:`carry_on`), so what one keyframe alone would give it there;
so does the backward track that reaches the first keyframe from the second, over the frames
before it.

At a keyframe, the mask is split: parts thinner than 5 working pixels (lines, cables, far limbs:
a morphological opening removes them) form a *thin layer* that is carried by the object's motion
alone, since to flow and to GrabCut they look like background; the rest is the *body*. The thin
layer's long straight parts that hang from the body (a paraglider's lines) are carried as lines
instead (:mod:`lama_video.lines`): anchored where they meet the body, turned and fanned out by
the image from frame to frame, and run on to the frame's edge where they leave it. The
object's colour model is learnt from the body's interior on the keyframes: the forward pass pools
those it has passed, the backward pass all of them (a later keyframe adds a look of the object,
it does not replace the earlier ones).

One tracking step (frame ``a`` -> neighbour ``b``), at the reduced working size of the flow:

1. Dense DIS flow both ways, ``a -> b`` and ``b -> a``, and their forward-backward error.
2. *Stray background.* Pixels of the mask whose flow follows the background's motion (a
   homography fitted around the object) and not the object's are dropped, unless their colour is
   more the keyframe object's than the surroundings' (a marked shadow moves with the ground under
   it) or they belong to the thin layer. Without this, a strip of ground caught next to a wheel
   travels with the ground and drags the mask along.
3. *Object motion.* Flow near the object's outline mixes object and background motion and is wrong
   where something passes in front, so the object's own flow is taken from its interior only
   (eroded mask, forward-backward consistent pixels, of the object's colours): a similarity
   transform fitted with RANSAC (so a zooming or turning object is carried as such) plus the
   interior's departure from it, spread by normalised Gaussian averaging at a scale tied to the
   object's size. The mask and the thin layer are splatted along that flow.
4. *Colour re-anchoring.* GrabCut (on the box around the mask, at most 40k pixels) re-fits the
   outline to frame ``b``'s colours with colour models fixed beforehand: the object's from the
   keyframe's own pixels (as the user marked them), the background's from a broad ring around the
   mask in frame ``b``. The splatted mask eroded by 2 px is sure object (so see-through parts and
   thin limbs are not cut away), the rest of it probable object, a band around it (15 px or 12%
   of the object's size) probable background. Its growth beyond the splatted mask is kept only
   where the colour is more the object's than the background's (histograms of the object's core
   and of a ring around it) and where it does not move with the background (step 2's test on the
   flow ``b -> a``). The result is carried to the next step.
5. The frame's hole is that mask plus the thin layer at full size, grown by ``safety_px``: a
   missed part of the object leaves a ghost in the result, which is worse than a slightly larger
   hole. Left out of it (not of the tracked mask) are the regions that show the background seen
   at that place before: the tracker keeps a plate of the background around the object, carried
   by the camera's motion, and a region of the mask within a few grey levels of a steady part of
   it is background the mask took in (the ground or a crowd of the object's colours that the
   re-fit let in); left as it is, the frame there differs from what a fill would bring by about
   that much only (:class:`_Plate`).
6. *Confidence.* Each step is scored (:attr:`MaskTracker.confidence`): the share of the mask
   whose colour is more the surroundings' than the object's, and the drift accumulated since the
   keyframe. :func:`suggest_keyframes` turns the scores into "add a keyframe near frame N".

Measured on the 13 shared DAVIS clips (bench/mask_propagation.py): see the numbers in that
script's output and the README; background seen through the object (bicycle wheels) that the
mask takes in and then follows, thin parts that change shape (a paraglider's lines as it lifts
off) and objects that grow fast (zooms) are the hard cases.

Masks are kept bit-packed and zlib-compressed (a few KB per frame); frames are never kept in
memory: the backward pass reads working-size copies written to a temporary file during the forward
pass.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.config import PropagationConfig, RunConfig
from lama_video.errors import MaskError
from lama_video.flow import (
    FlowEstimator,
    bbox,
    estimate_gray,
    fb_error,
    map_points,
    resize,
    to_gray,
    vector_length,
    working_scale,
)
from lama_video.lines import StraightParts

log = logging.getLogger(__name__)

__all__ = [
    "FrameSource",
    "MaskTracker",
    "PackedMasks",
    "carry_on",
    "check_keyframes",
    "combine",
    "holes",
    "load_keyframes",
    "propagate_keyframes",
    "propagate_masks",
    "suggest_keyframes",
    "tracking_steps",
    "tracking_summary",
    "write_mask_png",
]


class FrameSource(Protocol):
    """Anything with a ``frames()`` method that can be called more than once (a video reader).

    Each call yields the clip's frames in order, as :class:`~lama_video.video.Frame` objects (their
    ``rgb`` is used) or as bare (H, W, 3) uint8 RGB arrays.
    """

    def frames(self) -> Iterator[Any]: ...


class _ArraySource:
    """A :class:`FrameSource` over frames already in memory (tests, small clips)."""

    def __init__(self, frames: Sequence[NDArray[np.uint8]] | NDArray[np.uint8]) -> None:
        self._frames = frames

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        yield from self._frames


Frames = FrameSource | Sequence[NDArray[np.uint8]] | NDArray[np.uint8]


def _as_source(source: Frames) -> FrameSource:
    if hasattr(source, "frames") and callable(source.frames):
        return source
    return _ArraySource(source)  # type: ignore[arg-type]


def _rgb(item: Any) -> NDArray[np.uint8]:
    rgb = item.rgb if hasattr(item, "rgb") else item
    return np.asarray(rgb)


# --------------------------------------------------------------------------------------------------
# Compact mask storage


class PackedMasks:
    """A growing list of (H, W) bool masks stored at 1 bit per pixel, zlib-compressed.

    An 854x480 mask takes 51 KB bit-packed and typically 2-5 KB once compressed, so the masks of a
    long clip stay small in memory.

    Args:
        height, width: size of every mask.
    """

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width
        self._items: list[bytes | None] = []
        #: Per mask, how much the tracker vouches for it (see :attr:`MaskTracker.confidence`;
        #: 1.0 for a keyframe's own mask and a slot never scored).
        self.confidence: list[float] = []

    def __len__(self) -> int:
        return len(self._items)

    def resize(self, n: int) -> None:
        """Make room for ``n`` masks (new slots are empty masks until set)."""
        self._items.extend([None] * (n - len(self._items)))
        del self._items[n:]
        self.confidence.extend([1.0] * (n - len(self.confidence)))
        del self.confidence[n:]

    def append(self, mask: NDArray[np.bool_]) -> None:
        """Append an (H, W) bool mask."""
        self._items.append(self._pack(mask))
        self.confidence.append(1.0)

    def __setitem__(self, index: int, mask: NDArray[np.bool_]) -> None:
        self._items[index] = self._pack(mask)

    def __getitem__(self, index: int) -> NDArray[np.bool_]:
        """The (H, W) bool mask at ``index`` (all False for a slot never set)."""
        packed = self._items[index]
        if packed is None:
            return np.zeros((self.height, self.width), bool)
        bits = np.frombuffer(zlib.decompress(packed), np.uint8)
        flat = np.unpackbits(bits, count=self.height * self.width)
        return flat.reshape(self.height, self.width).view(bool)

    def __iter__(self) -> Iterator[NDArray[np.bool_]]:
        for i in range(len(self)):
            yield self[i]

    def is_set(self, index: int) -> bool:
        """Whether a mask was stored at ``index``."""
        return self._items[index] is not None

    def _pack(self, mask: NDArray[np.bool_]) -> bytes:
        if mask.shape != (self.height, self.width):
            raise ValueError(f"mask shape {mask.shape} != {(self.height, self.width)}")
        return zlib.compress(np.packbits(np.asarray(mask, bool).ravel()).tobytes(), 1)


class _FrameStore:
    """Working-size RGB frames written to a temporary file, read back in any order."""

    def __init__(self) -> None:
        # Closed by close() (propagate_masks' finally); a with-block cannot span the two passes.
        self._file = tempfile.TemporaryFile(prefix="lama-video-frames-")  # noqa: SIM115
        self._index: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._end = 0

    def put(self, index: int, rgb: NDArray[np.uint8]) -> None:
        data = np.ascontiguousarray(rgb).tobytes()
        self._file.seek(self._end)
        self._file.write(data)
        self._index[index] = (self._end, rgb.shape)
        self._end += len(data)

    def get(self, index: int) -> NDArray[np.uint8]:
        offset, shape = self._index[index]
        self._file.seek(offset)
        data = self._file.read(int(np.prod(shape)))
        return np.frombuffer(data, np.uint8).reshape(shape)

    def close(self) -> None:
        self._file.close()


# --------------------------------------------------------------------------------------------------
# Morphology helpers (elliptical structuring elements, radius in pixels)


def _disk(radius: int) -> NDArray[np.uint8]:
    return cast(
        NDArray[np.uint8],
        cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)),
    )


#: From this radius on, morphology goes through an exact Euclidean distance transform, whose cost
#: does not grow with the radius (a 45 px disk: 4 ms instead of 21 ms on a 640x360 mask; the
#: result differs from the elliptical kernel's on a few outline pixels).
_DISTANCE_RADIUS = 12


def _within(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """Pixels within ``radius`` (Euclidean, +0.5 so a disk's rim is kept) of a True pixel."""
    dist = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= radius + 0.5


def _dilate(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    if radius <= 0:
        return mask
    if radius >= _DISTANCE_RADIUS:
        return _within(mask, radius)
    return cv2.dilate(mask.view(np.uint8), _disk(radius)).view(bool)


def _erode(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    if radius <= 0:
        return mask
    if radius >= _DISTANCE_RADIUS:
        return ~_within(~mask, radius)
    return cv2.erode(mask.view(np.uint8), _disk(radius)).view(bool)


# --------------------------------------------------------------------------------------------------
# One tracking step


#: Seed of OpenCV's RNG for each GrabCut call (see :func:`colour_models`).
_GRABCUT_SEED = 0

#: The colour re-fit may grow the mask by this share of the object's size per frame (or by
#: ``refine_band_px``, whichever is more): a large or fast-growing object gains parts (a limb
#: coming into view, a rider re-entering the frame) faster than a fixed band allows. 0.12 with
#: the motion test on the growth (0.06 before it): breakdance's coverage from one keyframe over
#: 30 frames went from 86% to 98%, motocross-jump's from 79% to 92-99%.
_BAND_FRACTION = 0.12

#: GrabCut's crop reaches this many bands beyond the mask, so its background model sees a broad
#: ring of the surroundings, not a thin frame at the crop's edge.
_CROP_BANDS = 2.5

#: Motion test of :func:`moving_with_background` (working pixels): a pixel moves with the
#: background when its flow is within ``_BG_TOL`` of the background's and more than ``_OBJ_SEP``
#: from the object's.
_BG_TOL = 1.0
_OBJ_SEP = 3.0

#: The background seen so far (:class:`_Plate`). A tracked mask's pixel whose colour (5x5 mean)
#: is within ``_PLATE_TOL`` levels of the background seen at that place in at least
#: ``_PLATE_LOOKS`` earlier frames (which departed from their mean by less than
#: ``_PLATE_STEADY``) shows that background, and is left out of the written mask: left as it is,
#: the frame differs there from the background a fill would give by about that tolerance only.
#: Nor may the colour re-fit grow the tracked mask onto such a pixel where it moves with the
#: background (see :meth:`MaskTracker.step`).
#: The plate learns a frame's pixels more than ``_PLATE_REACH`` working px from the tracked mask;
#: its mean holds at most ``_PLATE_MEMORY`` looks (older ones fade). One look (two before the
#: growth test, 2026-12-07): 13 shared sequences, one keyframe, 30 / 60 frames, the same coverage
#: to the digit, area 2.196 -> 2.190 / 2.641 -> 2.631.
_PLATE_TOL = 6.0
_PLATE_LOOKS = 1
_PLATE_STEADY = 6.0
_PLATE_REACH = 4
_PLATE_MEMORY = 8.0
#: ... and only regions of such pixels with a part at least 2 * this + 1 px thick.
_PLATE_CORE_PX = 2


def _reliable(flow: NDArray[np.float32], fb_err: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Where ``flow`` passes the forward-backward check: ``fb_err`` under 1 px plus a tenth of
    the flow's length (a fast motion is measured less exactly)."""
    return fb_err < 1.0 + 0.1 * vector_length(flow)


def object_flow(
    mask: NDArray[np.bool_],
    flow: NDArray[np.float32],
    fb_err: NDArray[np.float32],
    *,
    carry: NDArray[np.bool_] | None = None,
) -> NDArray[np.float32]:
    """The object's own motion at each of its pixels.

    Flow is trusted only in the object's interior (mask eroded by 2 px) where the forward-backward
    error is small. A similarity transform (translation, rotation, scale) is fitted to the trusted
    flow with RANSAC, and the trusted flow's departure from it is spread over the whole object by
    normalised Gaussian averaging with a scale of 1/12 of the object's size. So the outline moves
    with the object, not with the background that the flow smears across it, and far from
    trusted pixels (the outline, thin parts) an object that grows or turns is carried as such, not
    as a translation.

    Args:
        mask: (H, W) bool object mask in the source frame.
        flow: (H, W, 2) float32 flow source -> target (pixels).
        fb_err: (H, W) float32 forward-backward error of ``flow`` (pixels).
        carry: (H, W) bool pixels that move with the object but whose own flow is not used (its
            thin parts; the parts of the mask not of the object's colours); the result covers
            them too.

    Returns:
        (H, W, 2) float32 flow, valid on the bounding box of the mask and ``carry`` (zero outside
        it).
    """
    out = np.zeros_like(flow)
    box = bbox(mask if carry is None else mask | carry, 0)
    if box is None or not mask.any():
        return out
    y0, y1, x0, x1 = box
    m = mask[y0:y1, x0:x1]
    f = flow[y0:y1, x0:x1]
    reliable = _erode(m, 2) & _reliable(f, fb_err[y0:y1, x0:x1])
    if reliable.sum() < 10:
        reliable = m
    median = np.median(f[reliable], axis=0).astype(np.float32)
    my, mx = np.nonzero(m)
    sigma = max(2.0, max(np.ptp(my), np.ptp(mx)) / 12.0)
    weight = reliable.astype(np.float32)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    prior = np.broadcast_to(median, f.shape).astype(np.float32)
    if reliable.sum() >= 30:
        py, px = np.nonzero(reliable)
        step = max(1, len(py) // 2000)
        py, px = py[::step], px[::step]
        src = np.stack([px + x0, py + y0], axis=1).astype(np.float32)
        dst = src + f[py, px]
        model, _ = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=1.0
        )
        if model is not None:
            prior = np.stack(
                [
                    model[0, 0] * xs + model[0, 1] * ys + model[0, 2] - xs,
                    model[1, 0] * xs + model[1, 1] * ys + model[1, 2] - ys,
                ],
                axis=-1,
            )
            prior = prior.astype(np.float32)
    resid = (f - prior) * weight[..., None]
    blur_w = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    blur_r = cv2.GaussianBlur(resid, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    # Normalised averaging of the residual; where no reliable pixel is near, the model's motion.
    eps = 1e-3
    out[y0:y1, x0:x1] = prior + blur_r / (blur_w[..., None] + eps)
    return out


def _background_homography(
    outside: NDArray[np.bool_], flow: NDArray[np.float32], reliable: NDArray[np.bool_]
) -> NDArray[np.float64] | None:
    """The background's motion: a homography fitted (RANSAC) to the reliable flow of the
    ``outside`` pixels (None with fewer than 50 of them or no fit)."""
    sel_bg = outside & reliable
    if sel_bg.sum() < 50:
        return None
    ys, xs = np.nonzero(sel_bg)
    step = max(1, len(ys) // 3000)
    ys, xs = ys[::step], xs[::step]
    src = np.stack([xs, ys], axis=1).astype(np.float32)
    dst = src + flow[ys, xs]
    hom, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
    return cast(NDArray[np.float64] | None, hom)


def moving_with_background(
    mask: NDArray[np.bool_],
    outside: NDArray[np.bool_],
    flow: NDArray[np.float32],
    fb_err: NDArray[np.float32],
    *,
    background: NDArray[np.float64] | None = None,
    reliable: NDArray[np.bool_] | None = None,
) -> NDArray[np.bool_]:
    """The pixels of ``mask`` that move with the background, not with the object.

    The background's motion is a homography fitted (RANSAC) to the reliable flow of the
    ``outside`` pixels; the object's is the median reliable flow of the mask's interior. A mask
    pixel moves with the background where its reliable flow is within ``_BG_TOL`` px of the
    background's and more than ``_OBJ_SEP`` px from the object's. Where the two motions are alike
    (a still object, a still camera) nothing is flagged: motion tells them apart only when they
    differ.

    ``background``: that homography when the caller has fitted it already (fitted here when
    None; a fit that failed is tried again, on the same pixels, and fails again); ``reliable``:
    :func:`_reliable` of ``flow`` and ``fb_err`` when the caller has it (computed here when None).

    Returns:
        (H, W) bool, True on the mask's background-moving pixels.
    """
    out = np.zeros_like(mask)
    if reliable is None:
        reliable = _reliable(flow, fb_err)
    sel_obj = _erode(mask, 2) & reliable
    if sel_obj.sum() < 10:
        return out
    hom = background if background is not None else _background_homography(outside, flow, reliable)
    if hom is None:
        return out
    obj_motion = np.median(flow[sel_obj], axis=0)
    my, mx = np.nonzero(mask)
    near_bg = _near_background(hom, flow, my, mx)
    far_obj = vector_length(flow[my, mx] - obj_motion) > _OBJ_SEP
    flag = near_bg & far_obj & reliable[my, mx]
    out[my[flag], mx[flag]] = True
    return out


def _near_background(
    hom: NDArray[np.float64],
    flow: NDArray[np.float32],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
) -> NDArray[np.bool_]:
    """Whether the flow at the pixels (``ys``, ``xs``) is within ``_BG_TOL`` px of the
    background's motion, the homography ``hom``."""
    bg_motion = map_points(hom, xs, ys) - np.stack([xs, ys], axis=1).astype(np.float32)
    return vector_length(flow[ys, xs] - bg_motion) < _BG_TOL


class _Plate:
    """The background around a tracked object as seen so far, in the current frame's pixels.

    Held for a box of the working frame (the tracking step's flow box: the object and a margin
    around it). Per pixel: a running mean of its colour (5x5 box mean) over the frames that
    showed it away from the object, how many looks it holds and their mean departure from it.
    Each step it is carried into the next box by the background's motion (a homography), so a
    still or panned-over background stays registered; what leaves the box is forgotten. Never
    changed in place (a forked tracker shares it).
    """

    def __init__(
        self,
        box: tuple[int, int, int, int],
        mean: NDArray[np.float32],
        count: NDArray[np.float32],
        dev: NDArray[np.float32],
    ) -> None:
        self.box, self.mean, self.count, self.dev = box, mean, count, dev

    @classmethod
    def empty(cls, box: tuple[int, int, int, int]) -> _Plate:
        """A plate of ``box`` (y0, y1, x0, x1) that has seen nothing."""
        y0, y1, x0, x1 = box
        zeros = np.zeros((y1 - y0, x1 - x0), np.float32)
        return cls(box, np.zeros((*zeros.shape, 3), np.float32), zeros, zeros)

    def moved(self, hom: NDArray[np.float64], box: tuple[int, int, int, int]) -> _Plate:
        """The plate carried into ``box`` of the next frame by the homography ``hom`` (this
        frame's working pixels -> the next frame's); the sums are carried, not the means, so a
        place next to unseen ones keeps its own colour."""
        y0, _, x0, _ = self.box
        ny0, ny1, nx0, nx1 = box
        into = _translation(-nx0, -ny0) @ hom @ _translation(x0, y0)
        c = self.count[..., None]
        stack = np.concatenate([self.mean * c, self.dev[..., None] * c, c], axis=2)
        warped = cv2.warpPerspective(
            stack,
            into,
            (nx1 - nx0, ny1 - ny0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
        count = warped[..., 4]
        safe = np.maximum(count, 1e-6)
        return _Plate(
            box,
            (warped[..., :3] / safe[..., None]).astype(np.float32),
            count.astype(np.float32),
            (warped[..., 3] / safe).astype(np.float32),
        )

    def seen(self, colours: NDArray[np.float32], where: NDArray[np.bool_]) -> _Plate:
        """The plate with one more look at ``where`` ((h, w, 3) box-mean colours of its box)."""
        wgt = np.where(where, 1.0 / (np.minimum(self.count, _PLATE_MEMORY) + 1.0), 0.0)
        wgt = wgt.astype(np.float32)
        diff = colours - self.mean
        gap = _channel_mean(np.abs(diff)) * (self.count > 0)
        return _Plate(
            self.box,
            self.mean + wgt[..., None] * diff,
            self.count + where,
            self.dev + wgt * (gap - self.dev),
        )

    def shows(self, colours: NDArray[np.float32], query: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """The ``query`` pixels (of its box) whose colour is the steady background's seen there
        before."""
        out = np.zeros_like(query)
        ys, xs = np.nonzero(query & (self.count >= _PLATE_LOOKS) & (self.dev < _PLATE_STEADY))
        if ys.size:
            gap = _channel_mean(np.abs(colours[ys, xs] - self.mean[ys, xs]))
            near = gap < _PLATE_TOL
            out[ys[near], xs[near]] = True
        return out


def _extent(mask: NDArray[np.bool_]) -> int:
    """The longer side of the box around ``mask``'s True pixels (0 when there are none)."""
    box = bbox(mask, 0)
    return 0 if box is None else max(box[1] - box[0], box[3] - box[2])


def _translation(dx: float, dy: float) -> NDArray[np.float64]:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def _channel_mean(v: NDArray[np.float32]) -> NDArray[np.float32]:
    """(..., 3) -> (...): the mean of the three channels."""
    return cast(NDArray[np.float32], (v[..., 0] + v[..., 1] + v[..., 2]) / np.float32(3.0))


def thin_parts(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """The parts of ``mask`` that a morphological opening with a disk of ``radius`` removes.

    Lines, cables and limbs narrower than ``2 * radius + 1`` pixels, and specks that small.
    """
    opened = cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, _disk(radius)).view(bool)
    return mask & ~opened


def splat(mask: NDArray[np.bool_], flow: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Move each True pixel of ``mask`` along ``flow`` (forward warping), closing the gaps.

    Each pixel lands on the nearest integer pixel of its target (no growth bias, unlike marking
    all 4 neighbours), and a 3x3 closing fills the gaps an expanding object leaves.
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    out = np.zeros((h, w), bool)
    if ys.size == 0:
        return out
    ix = np.rint(xs + flow[ys, xs, 0]).astype(np.int64)
    iy = np.rint(ys + flow[ys, xs, 1]).astype(np.int64)
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out[iy[ok], ix[ok]] = True
    return cv2.morphologyEx(out.view(np.uint8), cv2.MORPH_CLOSE, _disk(1)).view(bool)


def colour_models(
    obj: NDArray[np.uint8],
    bg: NDArray[np.uint8],
    *,
    max_samples: int = 20_000,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GrabCut's Gaussian-mixture colour models learnt from two sets of RGB samples.

    Args:
        obj, bg: (N, 3) uint8 colours of object / background pixels (each at least 1 sample;
            evenly thinned to ``max_samples``).

    Returns:
        (bgd_model, fgd_model), each (1, 65) float64 as ``cv2.grabCut`` takes them.
    """

    def thin(c: NDArray[np.uint8]) -> NDArray[np.uint8]:
        step = max(1, -(-len(c) // max_samples))
        return c[::step]

    obj, bg = thin(obj), thin(bg)
    img = np.concatenate([obj, bg]).reshape(-1, 1, 3)
    labels = np.full((len(img), 1), cv2.GC_BGD, np.uint8)
    labels[: len(obj)] = cv2.GC_FGD
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    # GrabCut seeds its colour mixtures with k-means on OpenCV's global per-thread RNG, so without
    # a fixed seed the result depends on every earlier call in the process (clip order, batch
    # jobs); seeded here, each fit depends on its inputs only.
    cv2.setRNGSeed(_GRABCUT_SEED)
    # iterCount 0: learn the mixtures from the labels and return.
    # rect None (unused in the mask modes): OpenCV's stubs want a sequence there.
    cv2.grabCut(
        np.ascontiguousarray(img),
        labels,
        None,
        bgd,
        fgd,
        0,  # type: ignore[call-overload]
        cv2.GC_INIT_WITH_MASK,
    )
    return bgd, fgd


def colour_refine(
    rgb: NDArray[np.uint8],
    mask: NDArray[np.bool_],
    *,
    band_px: int,
    core_px: int,
    obj_colours: NDArray[np.uint8],
    max_pixels: int = 40_000,
) -> NDArray[np.bool_]:
    """Fit ``mask`` to the colours of ``rgb`` with GrabCut, within ``band_px`` of its outline.

    GrabCut (Rother et al. 2004) models object and background colours with Gaussian mixtures and
    cuts along colour edges. It runs on the box around the mask, scaled down to at most
    ``max_pixels`` (its cost grows with the box's area; the outline it finds is then accurate to a
    pixel or two of the working size, which the safety margin covers).

    The mixtures are fixed before the cut: the object's from ``obj_colours`` (the keyframe's own
    object pixels), the background's from this frame's pixels beyond the band. Learnt from the
    prediction itself (GrabCut's own iterations), the object model would take in whatever
    background the prediction holds (a see-through wheel, a strip of ground) and the mask would
    spread over that background frame after frame.

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        mask: (H, W) bool predicted object mask.
        band_px: how far outside the prediction the object may grow.
        core_px: the prediction eroded by this much is kept as sure object.
        obj_colours: (N, 3) uint8 object colours from the keyframe.
        max_pixels: the box is downscaled to at most this many pixels.

    Returns:
        (H, W) bool refined mask (the prediction itself where GrabCut cannot run).
    """
    box = bbox(mask, round(_CROP_BANDS * band_px) + 8)
    if box is None:
        return mask
    y0, y1, x0, x1 = box
    m = mask[y0:y1, x0:x1]
    core = _erode(m, core_px)
    img = rgb[y0:y1, x0:x1]
    bh, bw = m.shape
    s = min(1.0, (max_pixels / (bh * bw)) ** 0.5)
    if s < 1.0:
        size = (max(2, round(bw * s)), max(2, round(bh * s)))
        img = cast(NDArray[np.uint8], cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        m = cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        core = cv2.resize(core.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        band_px = max(1, round(band_px * s))
    img = np.ascontiguousarray(img)
    grown = _dilate(m, band_px)
    labels = np.full(m.shape, cv2.GC_BGD, np.uint8)
    labels[grown] = cv2.GC_PR_BGD
    labels[m] = cv2.GC_PR_FGD
    labels[core & m] = cv2.GC_FGD
    bg = img[~grown]
    if len(bg) == 0 or len(obj_colours) == 0:
        return mask
    try:
        bgd, fgd = colour_models(obj_colours, bg)
        # rect None (unused in the mask modes): OpenCV's stubs want a sequence there.
        cv2.grabCut(
            img,
            labels,
            None,
            bgd,
            fgd,
            1,  # type: ignore[call-overload]
            cv2.GC_EVAL_FREEZE_MODEL,
        )
    except cv2.error:  # e.g. no background sample at all (object fills the box)
        return mask
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if s < 1.0:
        fg = cv2.resize(fg.astype(np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR) > 0.5
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = fg
    return out


def colour_share(
    obj: NDArray[np.uint8],
    bg: NDArray[np.uint8],
    query: NDArray[np.uint8],
) -> NDArray[np.float32]:
    """How object-like each ``query`` colour is, from colour histograms, in [0, 1].

    Histograms (16 levels per channel) of the ``obj`` and ``bg`` colours ((N, 3) uint8 each)
    give p(colour | object) and p(colour | background); the share is p_obj / (p_obj + p_bg)
    (0.5 where neither knows the colour).

    Returns:
        (n,) float32 shares of the (n, 3) ``query`` colours.
    """

    def codes(c: NDArray[np.uint8]) -> NDArray[np.int64]:
        q = (c >> 4).astype(np.int64)
        return (q[:, 0] << 8) | (q[:, 1] << 4) | q[:, 2]

    def density(c: NDArray[np.uint8]) -> NDArray[np.float64]:
        hist = np.bincount(codes(c), minlength=4096).astype(np.float64) + 0.5
        return hist / hist.sum()

    p_obj, p_bg = density(obj), density(bg)
    c = codes(query)
    return (p_obj[c] / (p_obj[c] + p_bg[c])).astype(np.float32)


#: GrabCut keeps the tracked mask eroded by this many working pixels as sure object: it may trim the
#: outline but not cut parts away (see-through wheels and thin limbs look like background to it).
_CORE_PX = 2

#: The thin layer's pixels within this many working px of a line found in it belong to the line.
_LINE_CLAIM_PX = 2
#: Lines are looked for on the keyframe's mask at up to this many times the working size.
_LINE_SEARCH_SCALE = 2.0

#: The object's motion is fitted on the object-coloured part of the mask unless that is less than
#: this share of it (then on all of it). bmx-trees (30 frames, one keyframe): 70.7% -> 89.4%.
_MIN_FIT_SHARE = 0.2

#: Weight of the accumulated drift in :attr:`MaskTracker.confidence`. On the 13 shared sequences'
#: one-keyframe tracks (60 frames) the confidence ranks a clip's frames by coverage only weakly
#: (Spearman's rho 0.17 on average over the 8 clips whose coverage varies; 0.06 with the colour
#: share alone): it says where drift has had time to build up more than where a part was lost.
_DRIFT_WEIGHT = 0.02


#: Coasting through an occlusion (see :meth:`MaskTracker.step`). The object is lost when the
#: share of the mask's pixels that have the object's colours falls below this share of the best
#: since the keyframe ... On the 13 shared sequences (one keyframe, 30 frames) 0.60-0.66 give the
#: same tracks but for breakdance's at 0.66 (98.3 % either way); at 0.58 bmx-trees' coasting
#: starts too late (90 % instead of 99 %), at 0.70 breakdance's spins coast (98.3 -> 97.9 %).
_LOST_SHARE = 0.62
#: ... and something passed in front of it: in one of the last ``_STRAY_STEPS`` steps at least
#: this share of the mask moved with the background and had the background's colours
#: (bmx-trees' tree: 0.13 at most; 0.02-0.12 give the same tracks).
_STRAY_SHARE = 0.05
_STRAY_STEPS = 3
#: Frames the mask coasts at most (bmx-trees' tree hides the rider for about 6: at most 5 frames
#: 96.5 %, 8 98.7 %, 12 97.5 %).
_MAX_COAST = 8
#: The object's last shift is the median of its motion over at most about this many pixels.
_SHIFT_SAMPLES = 4000


def _box_mean(rgb: NDArray[np.uint8], box: tuple[int, int, int, int]) -> NDArray[np.float32]:
    """(h, w, 3) float32 over ``box`` (y0, y1, x0, x1) of ``rgb``: each pixel's colour averaged
    over its 5x5 box, as on the whole frame."""
    y0, y1, x0, x1 = box
    fh, fw = rgb.shape[:2]
    gy0, gy1, gx0, gx1 = max(0, y0 - 2), min(fh, y1 + 2), max(0, x0 - 2), min(fw, x1 + 2)
    # Grown by the window's reach, so only the frame's own edges are extended (as on the whole
    # frame: OpenCV's default border); the grown crop's edges fall outside the box.
    blurred = cv2.blur(rgb[gy0:gy1, gx0:gx1].astype(np.float32), (5, 5))
    return cast(NDArray[np.float32], blurred[y0 - gy0 : y1 - gy0, x0 - gx0 : x1 - gx0])


def _inner_colours(
    small_rgb: NDArray[np.uint8], marked: NDArray[np.bool_], thin: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    """The colours of a marked body 1 px in from its outline (all of it if nothing is left)."""
    inner = _erode(marked & ~thin, 1)
    return small_rgb[inner if inner.any() else marked]


def _unreliable_share(
    mask: NDArray[np.bool_], flow: NDArray[np.float32], fb_err: NDArray[np.float32]
) -> float:
    """Share of the mask's interior whose flow fails the forward-backward check."""
    interior = _erode(mask, 2)
    if not interior.any():
        return 0.0
    speed = vector_length(flow[interior])
    return float((fb_err[interior] > 1.0 + 0.1 * speed).mean())


class MaskTracker:
    """Carries one mask from frame to neighbouring frame (either direction), at working size.

    Args:
        config: propagation settings.
        height, width: full frame size.
    """

    def __init__(self, config: PropagationConfig, height: int, width: int) -> None:
        self.config = config
        self.height = height
        self.width = width
        s = working_scale(height, width, config.flow_max_side_px)
        self.work_size = (max(8, round(width * s)), max(8, round(height * s)))  # (w, h)
        self._px = s  # full-res px -> working px
        self._flow = FlowEstimator(preset=config.flow_preset, max_side_px=config.flow_max_side_px)
        self._prev_rgb: NDArray[np.uint8] | None = None
        self._state: NDArray[np.bool_] | None = None
        self._thin: NDArray[np.bool_] | None = None
        # The thin layer's long straight parts, carried as lines (see lama_video.lines), and the
        # rest of it, splatted.
        self._lines: StraightParts | None = None
        self._plate: _Plate | None = None
        self._rest: NDArray[np.bool_] | None = None
        self._drift = 0.0
        # Restarted from an empty keyframe: the user says the object is not there, so the frames
        # this track reaches hold nothing, surely (see :func:`check_keyframes`).
        self._absent = False
        #: How much the last step's mask can be trusted, in [0, 1]: 1 minus the share of its
        #: pixels whose colour is more the surroundings' than the keyframe object's, minus
        #: ``_DRIFT_WEIGHT`` times the drift since the keyframe (the summed share of the object
        #: whose flow failed its forward-backward check, plus the summed |log| area changes).
        #: A relative score: it ranks a clip's frames (see :func:`suggest_keyframes`); an object
        #: that shares colours with its surroundings scores low everywhere.
        self.confidence = 1.0
        self._obj_colours: NDArray[np.uint8] | None = None
        self._clear_coasting()

    def _clear_coasting(self) -> None:
        """Forget the coasting state (see :meth:`step`): the object's last own shift (dx, dy),
        the share of the last mask's pixels that have the object's colours and the best such
        share since the keyframe, the frames coasted in a row, the recent steps' stray shares."""
        self._last_shift: NDArray[np.float32] | None = None
        self._share = 1.0
        self._ref_share = 0.0
        self._coasting = 0
        self._strays: list[float] = []

    def shrink(self, rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Full-size (H, W, 3) uint8 frame -> working size."""
        return resize(rgb, self.work_size)

    def _marked(self, mask: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """A full-size keyframe mask at working size, and its thin layer."""
        marked = resize(mask.astype(np.float32), self.work_size) > 0.25
        # Parts thinner than GrabCut's sure core (lines, cables, far limbs) are carried as their
        # own layer, by the object's motion alone: to flow and colour they look like background.
        return marked, thin_parts(marked, _CORE_PX)

    def object_colours(
        self, small_rgb: NDArray[np.uint8], mask: NDArray[np.bool_]
    ) -> NDArray[np.uint8]:
        """(N, 3) colours of the object as a keyframe marks it (working-size frame, full mask).

        Taken 1 px in from the outline, where colours mix with the background's.
        """
        return _inner_colours(small_rgb, *self._marked(mask))

    def reset(
        self,
        small_rgb: NDArray[np.uint8],
        mask: NDArray[np.bool_],
        colours: NDArray[np.uint8] | None = None,
    ) -> None:
        """Start from a keyframe: its working-size frame and its full-size (H, W) bool mask.

        ``colours``: the object's colours for the colour models of every tracked frame (e.g.
        pooled from several keyframes); by default this keyframe's (:meth:`object_colours`). An
        empty mask says the object is absent: every step from it returns an empty mask with
        confidence 1.
        """
        self._drift = 0.0
        self.confidence = 1.0
        self._prev_rgb = small_rgb
        self._plate = None
        self._clear_coasting()
        self._absent = not mask.any()
        if self._absent:
            empty = np.zeros((self.work_size[1], self.work_size[0]), bool)
            self._state, self._thin, self._lines, self._rest = empty, empty, None, None
            self._obj_colours = colours if colours is not None else np.zeros((0, 3), np.uint8)
            return
        self._state, self._thin = self._marked(mask)
        # Lines are looked for on the mask at up to twice the working size (a line is one stroke
        # there; on a 4K mask the search would cost seconds).
        fine = min(1.0, _LINE_SEARCH_SCALE * self._px)
        sharp = mask
        if fine < 1.0:
            size = (round(self.width * fine), round(self.height * fine))
            sharp = resize(mask.astype(np.float32), size) > 0.25  # a thin line stays
        found = thin_parts(sharp, max(1, round(_CORE_PX * fine / self._px)))
        self._lines = StraightParts.find(
            small_rgb, self._state & ~self._thin, found, self._px / fine
        )
        self._rest = self._thin
        if self._lines is not None:
            self._rest = self._thin & ~_dilate(self._lines.mask(), _LINE_CLAIM_PX)
        if self.config.colour_refine:
            # Learnt on the box the first step's flow covers (see _flows).
            box = self._flow_box(self._state)
            ys, xs = slice(box[0], box[1]), slice(box[2], box[3])
            away = ~_dilate(self._state | self._thin, _PLATE_REACH)[ys, xs]
            self._plate = _Plate.empty(box).seen(_box_mean(small_rgb, box), away)
        if colours is None:
            colours = _inner_colours(small_rgb, self._state, self._thin)
        self._obj_colours = colours

    def fork(self) -> MaskTracker:
        """A tracker that goes on from this one's state independently of it (its arrays are
        replaced by each step, never changed in place, so a shallow copy is one)."""
        return copy.copy(self)

    def step(self, small_rgb: NDArray[np.uint8]) -> NDArray[np.bool_]:
        """Track into the next frame (working size (h, w, 3) uint8); return its full-size mask."""
        if self._state is None or self._prev_rgb is None or self._obj_colours is None:
            raise RuntimeError("MaskTracker.step() called before reset()")
        state, prev, thin = self._state, self._prev_rgb, self._thin
        self._prev_rgb = small_rgb
        if not state.any():
            self.confidence = 1.0 if self._absent else 0.0
            return np.zeros((self.height, self.width), bool)
        size = _extent(state)
        ff, fb, (y0, y1, x0, x1) = self._flows(prev, small_rgb, state, size)
        err = fb_error(ff, fb, (y0, y1, x0, x1))
        band = max(2, round(self.config.refine_band_px * self._px), round(_BAND_FRACTION * size))

        # Background caught in the mask (a strip of ground next to a wheel) moves with the
        # background and is dropped before it is carried on, unless its colour is the object's
        # (a shadow the user marked also moves with the ground under it). Only the flow box
        # matters (the mask lies inside it; flow is zero outside), so the work is done there.
        fbox = np.s_[y0:y1, x0:x1]
        before = max(1, int(state.sum()))
        self._drift += _unreliable_share(state[fbox], ff[fbox], err[fbox])
        outside = ~_dilate(state[fbox], band)
        near = prev[fbox]
        # How object-like each mask pixel's colour is against the surroundings (0.5 elsewhere),
        # for both tests below.
        share = np.full(state[fbox].shape, 0.5, np.float32)
        inside = state[fbox]
        share[inside] = colour_share(self._obj_colours, near[outside], near[inside])
        # The background's motion around the object (for the test below and the plate).
        ff_reliable = _reliable(ff[fbox], err[fbox])
        bg_hom = _background_homography(outside, ff[fbox], ff_reliable)
        # Mask pixels moving with the background and of its colours (dropped; and the sign of
        # something passing in front, see the coasting below).
        stray = moving_with_background(
            state[fbox], outside, ff[fbox], err[fbox], background=bg_hom, reliable=ff_reliable
        ) & (share < 0.5)
        if stray.any():
            drop = np.zeros_like(state)
            drop[fbox] = stray
            if thin is not None:
                drop &= ~thin
            state = state & ~drop

        # The object's motion is fitted on the mask's object-coloured pixels only: background
        # that the mask took in (seen through a wheel, caught beside it) moves with the camera
        # and, where it is most of the mask, would carry the mask off with the background.
        fit = np.zeros_like(state)
        fit[fbox] = state[fbox] & (share > 0.5)
        if fit.sum() < _MIN_FIT_SHARE * state.sum():
            fit = state
        motion = object_flow(fit, ff, err, carry=state if thin is None else state | thin)
        # Something passing in front of the object (a tree the camera pans past) drags the mask
        # along with it: there the mask's pixels move with the background and have its colours,
        # and soon the object's colours in the mask fall. Then the mask is carried by the
        # object's last own shift instead, for a few frames or until the object shows again.
        stray_now = float(stray.sum()) / before
        self._strays = [*self._strays[1 - _STRAY_STEPS :], stray_now]
        lost = self._share < _LOST_SHARE * self._ref_share
        if self._coasting:
            coast = lost and self._coasting < _MAX_COAST
        else:
            coast = lost and max(self._strays) > _STRAY_SHARE
        if coast and self._last_shift is not None:
            motion = np.broadcast_to(self._last_shift, motion.shape).astype(np.float32)
            self._coasting += 1
        else:
            if not self._coasting and not lost and state.any():
                # The median of the object's motion over (at most ~4,000 of) its pixels.
                idx = np.flatnonzero(state)
                idx = idx[:: max(1, idx.size // _SHIFT_SAMPLES)]
                self._last_shift = np.median(motion.reshape(-1, 2)[idx], axis=0).astype(np.float32)
            self._coasting = 0
        moved = splat(state, motion)
        if self._lines is not None:
            rest = self._rest
            assert rest is not None  # set with the lines (reset)
            if rest.any():
                rest = self._rest = splat(rest, motion)
            self._lines = self._lines.step(small_rgb, motion)
            thin = self._thin = rest | self._lines.mask()
        elif thin is not None and thin.any():
            thin = splat(thin, motion)
            self._thin = thin
        if not self.config.colour_refine:
            self._settle(moved, before, small_rgb, band)
            return self._to_full(moved, thin)
        refined = colour_refine(
            small_rgb, moved, band_px=band, core_px=_CORE_PX, obj_colours=self._obj_colours
        )
        plate = self._plate_here(fbox, bg_hom)
        colours = _box_mean(small_rgb, plate.box)
        grown = refined & ~moved
        if grown.any():
            # Growth is kept only where the colour is more the object's than the background's, by
            # histograms of the object's core and of the ring around it (computed on the box
            # that holds the ring: GrabCut's growth stays within the band).
            ring_box = bbox(moved | refined, 2 * band + 3)
            assert ring_box is not None
            cy0, cy1, cx0, cx1 = ring_box
            cbox = np.s_[cy0:cy1, cx0:cx1]
            m, g, img = moved[cbox], grown[cbox], small_rgb[cbox]
            ring = _dilate(m, 2 * band) & ~_dilate(m, band)
            keep = np.zeros_like(grown)
            keep[cbox][g] = colour_share(img[_erode(m, 2)], img[ring], img[g]) > 0.5
            refined = (refined & moved) | keep
            # ... and only where it does not move with the background (flow this frame -> the
            # previous one): a wide band lets a limb that moved fast back in, and this keeps the
            # ground or a parked car of the object's colours out when the camera or the object
            # moves.
            back, back_err = fb[fbox], fb_error(fb[fbox], ff[fbox])
            around = ~_dilate(refined[fbox], band)
            back_reliable = _reliable(back, back_err)
            back_hom = _background_homography(around, back, back_reliable)
            with_bg = moving_with_background(
                refined[fbox], around, back, back_err, background=back_hom, reliable=back_reliable
            )
            refined[fbox] &= ~(with_bg & ~moved[fbox])
            # ... nor onto the background the plate saw there, where the pixel still shows it
            # and moves with it (wherever the object moves alike: a still player's shadow on a
            # clay court took the court in, 5x the player's area after 30 frames). A part the
            # track lost and the plate learnt may still come back where it moves on its own.
            if back_hom is not None:
                ys, xs = np.nonzero(plate.shows(colours, (refined & ~moved)[fbox]))
                stays = back_reliable[ys, xs] & _near_background(back_hom, back, ys, xs)
                refined[fbox][ys[stays], xs[stays]] = False
        self._settle(refined, before, small_rgb, band)
        # The tracked mask stays as it is (what it took in is dropped by the tests above or
        # not at all); the mask written leaves out what shows the background seen there before.
        shown = refined & ~self._background_shown(refined, thin, colours, fbox, plate)
        return self._to_full(shown, thin)

    def _plate_here(self, fbox: tuple[slice, slice], hom: NDArray[np.float64] | None) -> _Plate:
        """The plate carried into this frame's flow box ``fbox`` by ``hom``, the background's
        motion the step fitted there (None: none fitted, the plate starts again)."""
        assert self._plate is not None
        ys, xs = fbox
        box = (ys.start, ys.stop, xs.start, xs.stop)
        if hom is None:  # no camera motion to carry the plate by: start again
            return _Plate.empty(box)
        # the fit is in the box's pixels: into the frame's
        frame_hom = _translation(box[2], box[0]) @ hom @ _translation(-box[2], -box[0])
        return self._plate.moved(frame_hom, box)

    def _background_shown(
        self,
        mask: NDArray[np.bool_],
        thin: NDArray[np.bool_] | None,
        colours: NDArray[np.float32],
        fbox: tuple[slice, slice],
        plate: _Plate,
    ) -> NDArray[np.bool_]:
        """The pixels of ``mask`` (not of the thin layer) that show the background seen there
        before: ``plate``, the plate carried into this frame's flow box ``fbox``
        (:meth:`_plate_here`; ``colours`` are the box's, :func:`_box_mean`), which then learns
        this frame's pixels away from the mask. (Background caught in the mask moves with the
        object's mask, not with itself: what a pan or a turn brings under it was seen just
        before.)"""
        shown = plate.shows(colours, (mask if thin is None else mask & ~thin)[fbox])
        if shown.any():
            # Only regions with a part at least ``2 _PLATE_CORE_PX + 1`` px thick: an object
            # whose colours match the background seen under it here and there (dark patches on
            # a dark ground) keeps those specks; background caught in the mask is a region.
            core = cv2.morphologyEx(shown.view(np.uint8), cv2.MORPH_OPEN, _disk(_PLATE_CORE_PX))
            count, labels = cv2.connectedComponents(shown.view(np.uint8), connectivity=8)
            thick = np.zeros(count, bool)
            thick[np.unique(labels[core.view(bool)])] = True
            thick[0] = False
            shown = thick[labels]
        self._plate = plate.seen(
            colours, ~_dilate(mask if thin is None else mask | thin, _PLATE_REACH)[fbox]
        )
        out = np.zeros_like(mask)
        out[fbox] = shown
        return out

    def _settle(
        self, mask: NDArray[np.bool_], before: int, small_rgb: NDArray[np.uint8], band: int
    ) -> None:
        """Keep ``mask`` as the tracked state and score the step (:attr:`confidence`)."""
        assert self._obj_colours is not None
        self._state = mask
        self._drift += abs(float(np.log(max(1, int(mask.sum())) / before)))
        box = bbox(mask, 2 * band + 3)
        mismatch = 1.0
        if box is not None:
            y0, y1, x0, x1 = box
            m, img = mask[y0:y1, x0:x1], small_rgb[y0:y1, x0:x1]
            ring = _dilate(m, 2 * band) & ~_dilate(m, band)
            mismatch = 0.0
            if ring.any():
                share = colour_share(self._obj_colours, img[ring], img[m])
                mismatch = float((share < 0.5).mean())
        self._share = 1.0 - mismatch
        if self._coasting == 0:
            self._ref_share = max(self._ref_share, self._share)
        self.confidence = float(np.clip(1.0 - mismatch - _DRIFT_WEIGHT * self._drift, 0.0, 1.0))

    def _flows(
        self,
        prev: NDArray[np.uint8],
        cur: NDArray[np.uint8],
        state: NDArray[np.bool_],
        size: int,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], tuple[int, int, int, int]]:
        """Flow prev -> cur and cur -> prev, computed on the box around the object only.

        Outside the box (the object's box grown by half its ``size``, at least 48 px, to cover its
        motion and the background band GrabCut looks at) the flow is zero; nothing reads it.
        Returns the flows and that box (y0, y1, x0, x1).
        """
        h, w = state.shape
        y0, y1, x0, x1 = self._flow_box(state, size)
        ff = np.zeros((h, w, 2), np.float32)
        fb = np.zeros((h, w, 2), np.float32)
        # estimate_gray: a fresh DIS instance per call, so the result does not depend on the
        # sizes of earlier crops (OpenCV's DIS keeps buffers between calls).
        a, b = to_gray(prev[y0:y1, x0:x1]), to_gray(cur[y0:y1, x0:x1])
        ff[y0:y1, x0:x1] = estimate_gray(self._flow, a, b)
        fb[y0:y1, x0:x1] = estimate_gray(self._flow, b, a)
        return ff, fb, (y0, y1, x0, x1)

    @staticmethod
    def _flow_box(state: NDArray[np.bool_], size: int | None = None) -> tuple[int, int, int, int]:
        """The box :meth:`_flows` computes the flow on: the object's box grown by half its
        ``size`` (its box's longer side by default), at least 48 px."""
        if size is None:
            size = _extent(state)
        h, w = state.shape
        return bbox(state, max(48, size // 2)) or (0, h, 0, w)

    def _to_full(
        self, small: NDArray[np.bool_], thin: NDArray[np.bool_] | None = None
    ) -> NDArray[np.bool_]:
        soft = resize(small.astype(np.float32), (self.width, self.height))
        full = soft > 0.5
        if thin is not None and thin.any():
            # A line one working pixel wide is less than half of every full-size pixel it crosses.
            full |= resize(thin.astype(np.float32), (self.width, self.height)) > 0.2
        return _dilate(full, self.config.safety_px)


# --------------------------------------------------------------------------------------------------
# Whole-clip propagation


#: Colours pooled from several keyframes are thinned evenly to at most this many (the colour
#: histograms and models need a few thousand; the tracker's steps scan all of them).
_MAX_POOLED_COLOURS = 60_000


def _pooled(colours: list[NDArray[np.uint8]]) -> NDArray[np.uint8]:
    """The object's colours on several keyframes as one model's samples.

    More keyframes never take colours away: each tracked frame is judged against every look of
    the object the user marked so far, not just the last one (breakdance, a keyframe every 10
    frames: the frames after the last keyframe fell below the one-keyframe run's coverage when
    only that keyframe's colours were kept).
    """
    if len(colours) == 1:
        return colours[0]
    # Thinned before joining: a call copies about the cap, not every keyframe's colours (a clip
    # with a keyframe on every frame pools at each one).
    step = -(-sum(len(c) for c in colours) // _MAX_POOLED_COLOURS)
    return np.concatenate([c[::step] for c in colours])


def check_keyframes(
    keyframes: Mapping[int, NDArray[Any]],
    height: int | None = None,
    width: int | None = None,
    n_frames: int | None = None,
) -> dict[int, NDArray[np.bool_]]:
    """Validate keyframe masks and return them as {index: (H, W) bool}, sorted by index.

    An empty keyframe mask says the object is absent from that frame (before it enters the shot,
    after it leaves): the tracks stop there, and the frames they would have reached from it are
    left alone. At least one keyframe must mark the object.

    Args:
        keyframes: {frame index: (H, W) mask}; bool, or uint8/other numbers where > 0 is the hole.
        height, width: frame size to check against (skipped when None).
        n_frames: clip length to check indices against (skipped when None).

    Raises:
        MaskError: no keyframes, an index outside the clip, a mask that is not 2-D or of the
            wrong size, or every mask empty.
    """
    if not keyframes:
        raise MaskError("no keyframe mask given; pass at least one --keyframe-mask FRAME:PATH")
    out: dict[int, NDArray[np.bool_]] = {}
    for index in sorted(keyframes):
        mask = np.asarray(keyframes[index])
        if not isinstance(index, (int, np.integer)) or index < 0:
            raise MaskError(
                f"keyframe index {index!r} is not a frame number; use 0 for the first frame"
            )
        if n_frames is not None and index >= n_frames:
            raise MaskError(
                f"keyframe {index} is outside the clip (frames 0..{n_frames - 1}, "
                f"{n_frames} frames); use a frame number below {n_frames}"
            )
        if mask.ndim != 2:
            raise MaskError(
                f"keyframe mask {index} has shape {mask.shape}, expected a 2-D (H, W) "
                "mask; give a single-channel image"
            )
        if height is not None and width is not None and mask.shape != (height, width):
            raise MaskError(
                f"keyframe mask {index} is {mask.shape[1]}x{mask.shape[0]} but the "
                f"video frames are {width}x{height}; give a mask of the frame size"
            )
        out[int(index)] = mask if mask.dtype == bool else mask > 0
    if not any(m.any() for m in out.values()):
        listed = ", ".join(str(i) for i in out)
        raise MaskError(
            f"every keyframe mask is empty (no pixel marked on frame {listed}); mark the object "
            "to remove in white on at least one frame (an empty keyframe only says where it is "
            "absent)"
        )
    return out


def combine(forward: NDArray[np.bool_], backward: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Combine the masks tracked from the previous and the next keyframe: their union.

    Each direction can lose a part of the object (or all of it, behind an occluder) that the other
    still has, and a missed part leaves a ghost, so a frame between two keyframes keeps what
    either found: adding a keyframe never takes away what the track from an existing one covered
    there. (Dropping the far direction's extra pixels near a keyframe saved about 0.2x of the
    object's area on the 13 shared clips but cut coverage by up to 13 points on frames next to a
    new keyframe: parkour's frame 13 fell from 99% to 86% when a keyframe was added at 16.)

    Args:
        forward, backward: (H, W) bool masks from the previous / next keyframe.

    Returns:
        (H, W) bool combined mask.
    """
    return forward | backward


#: How far (full-size px) a track that went on past a keyframe may reach beyond the track that
#: the keyframe restarts (:func:`carry_on`). 12 since 2026-12-06 (8 before): a keyframe every 10
#: frames over 60 frames of breakdance then holds 99.2 % against 99.1 % from one keyframe (8 px:
#: 99.07 against 99.08), for 0.02-0.05x more area on the 13 shared clips.
_CARRY_BAND_PX = 12


def carry_on(own: NDArray[np.bool_], arriving: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """A frame's mask from the tracks its nearest keyframes restarted (``own``: between two
    keyframes the union of both directions) and a track that went on past those keyframes
    (``arriving``: forward, the first keyframe's; backward, before the first keyframe, the
    second's).

    A restarted track is as tight as the keyframe's mask, and where the object moves fast it can
    leave out a leading limb in the next frames that the longer, looser track held: adding a
    keyframe then lowered those frames' coverage (32 of 342 frames of the 13 shared clips below
    their one-keyframe run with a keyframe every 10 frames; breakdance's frame 22 97.3 -> 91.9 %).
    The arriving track is kept only within ``_CARRY_BAND_PX`` of the restarted ones: whatever it
    carried away from the object (which the keyframes correct) stays out.

    Args:
        own, arriving: (H, W) bool full-size masks.

    Returns:
        (H, W) bool: ``own`` plus the part of ``arriving`` within the band around it.
    """
    return own | (arriving & _dilate(own, _CARRY_BAND_PX))


def tracking_steps(n_frames: int, keyframes: Iterable[int]) -> int:
    """How many frames :func:`propagate_masks` reports to ``progress`` on a clip of
    ``n_frames``: every frame in the forward pass, then the frames before the last keyframe that
    are not keyframes in the backward pass (for a progress bar's total)."""
    keys = set(keyframes)
    return n_frames + max(keys) + 1 - len(keys)


def suggest_keyframes(
    confidence: Sequence[float], keyframes: Iterable[int], count: int = 3
) -> list[int]:
    """Frames where a new keyframe would help most: the least confident ones, spread out.

    Frames are taken in order of rising tracking confidence (see
    :attr:`MaskTracker.confidence`), skipping keyframes, frames the tracking is sure of
    (confidence 1: where an empty keyframe says the object is absent) and frames closer than a
    tenth of the clip (at least 3 frames) to one already taken, so the suggestions point at
    different stretches of the clip.

    Args:
        confidence: per frame, in [0, 1] (:attr:`PackedMasks.confidence`).
        keyframes: frames that already have a keyframe mask.
        count: at most this many suggestions.

    Returns:
        Frame indices, least confident first (empty when every other frame is sure).
    """
    keys = set(keyframes)
    spacing = max(3, len(confidence) // 10)
    order = sorted((c, t) for t, c in enumerate(confidence) if t not in keys and c < 1.0)
    out: list[int] = []
    for _, t in order:
        if len(out) == count:
            break
        if all(abs(t - u) >= spacing for u in out):
            out.append(t)
    return out


def tracking_summary(tracked: PackedMasks, keyframes: Iterable[int]) -> dict[str, list[Any]]:
    """What the reports keep of a tracking run: ``confidence`` (per frame, 4 decimals) and
    ``suggested_keyframes`` (:func:`suggest_keyframes`)."""
    return {
        "confidence": [round(c, 4) for c in tracked.confidence],
        "suggested_keyframes": suggest_keyframes(tracked.confidence, keyframes),
    }


def load_keyframes(
    keyframes: Mapping[int, NDArray[Any] | str | os.PathLike[str]], cfg: RunConfig | None = None
) -> dict[int, NDArray[np.bool_]]:
    """Read keyframe masks given as arrays or image paths, as {index: (H, W) bool}.

    Paths are read with :func:`lama_video.masks.read_mask_image` and binarised with the
    ``masks.threshold`` rule (auto: ``> 127`` for lossy JPEG/WebP, ``> 0`` otherwise). Arrays are
    taken as they are (> 0 = hole). Nothing else is checked here; see :func:`check_keyframes`.

    Raises:
        MaskError: a file is missing or unreadable.
    """
    from lama_video import masks as masks_mod

    threshold = (cfg or RunConfig()).masks.threshold
    out: dict[int, NDArray[np.bool_]] = {}
    for index, value in keyframes.items():
        if isinstance(value, (str, os.PathLike)):
            path = Path(value)
            lossy = path.suffix.lower() in masks_mod.LOSSY_IMAGE_EXTENSIONS
            img = masks_mod.read_mask_image(path)
            out[index] = masks_mod.binarize(img, masks_mod.auto_threshold(threshold, lossy=lossy))
        else:
            arr = np.asarray(value)
            out[index] = arr if arr.dtype == bool else arr > 0
    return out


def propagate_masks(
    source: Frames,
    keyframes: Mapping[int, NDArray[Any] | str | os.PathLike[str]],
    cfg: RunConfig | PropagationConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> PackedMasks:
    """Track keyframe masks through the whole clip (eagerly) and return every frame's mask.

    Decodes ``source`` once (forward pass); frames up to the last keyframe are kept at working size
    in a temporary file for the backward pass, never in memory. Keyframes keep their own mask
    exactly; every other frame gets its tracked mask grown by ``propagation.safety_px``. The
    removal dilation (``masks.dilate_px``) is NOT applied here.

    Args:
        source: a reader with a re-callable ``frames()`` (yielding ``Frame`` or (H, W, 3) uint8
            RGB), or the frames themselves ((N, H, W, 3) uint8 RGB array or a list of them).
        keyframes: {frame index: (H, W) mask (bool, or numbers > 0 = hole) or a mask image path}.
        cfg: a :class:`RunConfig` (its ``propagation`` and ``masks.threshold`` are used), or just a
            :class:`PropagationConfig`; defaults when None.
        progress: called with the number of frames just processed (each frame is counted once per
            pass that touches it: forward, then backward).

    Returns:
        One (H, W) bool mask per frame of the clip (True = hole), bit-packed.

    Raises:
        MaskError: bad keyframes (see :func:`check_keyframes`) or a clip with no frames.
    """
    run_cfg = cfg if isinstance(cfg, RunConfig) else None
    pcfg = cfg if isinstance(cfg, PropagationConfig) else (run_cfg or RunConfig()).propagation
    src = _as_source(source)
    kf = check_keyframes(load_keyframes(keyframes, run_cfg), *_known_size(src))
    indices = sorted(kf)
    first, last = indices[0], indices[-1]

    store = _FrameStore()
    try:
        forward, first_masks, n, height, width, tracker, colours = _forward_pass(
            src, kf, pcfg, store, progress
        )
        check_keyframes(kf, height, width, n)
        result = PackedMasks(height, width)
        result.resize(n)
        for i in indices:
            result[i] = kf[i]
        # Backward pass: from each keyframe back to the previous one (or the clip's start), with
        # the colours of every keyframe (the forward pass took them). From the last stretch to
        # the first: before the first keyframe, where no forward track is, the backward track
        # that reached it from the second goes on beside the one it restarts (carry_on), as the
        # first keyframe's track does forward (joined here, after the union of both directions).
        # Between two keyframes the backward tracks are not carried on: the forward ones are
        # there too (each backward track carried one stretch further, a keyframe every 10
        # frames on the 13 shared clips, 30 / 60 frames: area 2.72 -> 2.78 / 2.95 -> 3.04,
        # coverage unchanged).
        bounds = [-1, *indices]
        carried: MaskTracker | None = None  # the second keyframe's, once it reaches the first
        for k_prev, k_next in reversed(list(itertools.pairwise(bounds))):
            if k_next == 0:  # a keyframe on the first frame: nothing before it
                break
            # A track from an empty keyframe (the object absent) holds nothing, surely; the
            # union with it is as sure as the other track alone.
            absent = (k_prev >= 0 and not kf[k_prev].any(), not kf[k_next].any())
            if carried is not None:
                carried.step(store.get(k_next))  # into the keyframe it reached
            tracker.reset(store.get(k_next), kf[k_next], colours)
            for t in range(k_next - 1, k_prev, -1):
                back = tracker.step(store.get(t))
                if carried is not None:
                    back = carry_on(back, carried.step(store.get(t)))
                if k_prev < 0:  # before the first keyframe: no forward track
                    result[t], result.confidence[t] = back, tracker.confidence
                else:  # the union is as sure as the surer of its two (not empty) tracks
                    result[t] = combine(forward[t], back)
                    sides = (forward.confidence[t], tracker.confidence)
                    sure = [c for c, gone in zip(sides, absent, strict=True) if not gone]
                    result.confidence[t] = max(sure, default=1.0)
                    if first_masks.is_set(t):
                        result[t] = carry_on(result[t], first_masks[t])
                if progress is not None:
                    progress(1)
            if k_prev == first:  # the stretch before the first keyframe comes next
                carried = tracker.fork()
        for t in range(last + 1, n):
            result[t] = forward[t]
            if first_masks.is_set(t):
                result[t] = carry_on(result[t], first_masks[t])
            result.confidence[t] = forward.confidence[t]
        log.debug(
            "propagated %d keyframe mask(s) over %d frames (first %d, last %d)",
            len(kf),
            n,
            first,
            last,
        )
        return result
    finally:
        store.close()


def propagate_keyframes(
    source: Frames,
    keyframes: Mapping[int, NDArray[Any] | str | os.PathLike[str]],
    cfg: RunConfig | PropagationConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    n_frames: int | None = None,
    on_tracked: Callable[[PackedMasks], None] | None = None,
) -> Iterator[NDArray[np.bool_]]:
    """One (H, W) bool mask per frame, in order: :func:`propagate_masks` as an iterator.

    The keyframe masks are read and checked (files, emptiness, size against ``source.info`` when
    it has one, indices against ``n_frames`` when given) before this returns; the tracking runs
    at the first ``next()``, and ``on_tracked`` then gets the whole result (its per-frame
    ``confidence`` included) before the first mask is yielded.

    Raises:
        MaskError: as :func:`propagate_masks`.
    """
    run_cfg = cfg if isinstance(cfg, RunConfig) else None
    src = _as_source(source)
    kf = check_keyframes(load_keyframes(keyframes, run_cfg), *_known_size(src), n_frames=n_frames)

    def masks() -> Iterator[NDArray[np.bool_]]:
        tracked = propagate_masks(src, kf, cfg, progress=progress)
        if on_tracked is not None:
            on_tracked(tracked)
        yield from tracked

    return masks()


def holes(
    source: Frames,
    keyframes: Mapping[int, NDArray[Any] | str | os.PathLike[str]],
    cfg: RunConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    n_frames: int | None = None,
    on_tracked: Callable[[PackedMasks], None] | None = None,
) -> Iterator[NDArray[np.bool_]]:
    """The holes ``remove`` fills for these keyframes: propagated masks + ``masks.dilate_px``.

    What ``lama-video mask`` writes; (H, W) bool per frame, True = hole. Keyframes are checked
    before this returns, and ``on_tracked`` gets the undilated tracking result (see
    :func:`propagate_keyframes`).
    """
    from lama_video import masks as masks_mod

    run_cfg = cfg or RunConfig()
    masks = propagate_keyframes(
        source, keyframes, run_cfg, progress=progress, n_frames=n_frames, on_tracked=on_tracked
    )

    def dilated() -> Iterator[NDArray[np.bool_]]:
        for mask in masks:
            yield masks_mod.dilate(mask, run_cfg.masks.dilate_px)

    return dilated()


def write_mask_png(path: str | os.PathLike[str], mask: NDArray[np.bool_]) -> None:
    """Write an (H, W) bool mask as an 8-bit grey PNG, 255 = hole, 0 elsewhere."""
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:  # pragma: no cover - cv2 encodes any uint8 image
        raise OSError(f"cannot encode mask PNG for {str(path)!r}")
    Path(path).write_bytes(buf.tobytes())


def _known_size(src: FrameSource) -> tuple[int | None, int | None]:
    info = getattr(src, "info", None)
    if info is None:
        return None, None
    return getattr(info, "height", None), getattr(info, "width", None)


def _forward_pass(
    src: FrameSource,
    kf: dict[int, NDArray[np.bool_]],
    cfg: PropagationConfig,
    store: _FrameStore,
    progress: Callable[[int], None] | None,
) -> tuple[PackedMasks, PackedMasks, int, int, int, MaskTracker, NDArray[np.uint8]]:
    """Track forward from the first keyframe. Returns the masks of the tracks restarted at each
    keyframe, the first keyframe's track where it went on past later keyframes (set from the
    frame after the second keyframe on; see :func:`carry_on`), the frame count and size, the
    tracker and the object's colours on every keyframe, pooled (:func:`_pooled`), for the
    backward pass."""
    first, last = min(kf), max(kf)
    tracker: MaskTracker | None = None
    forward: PackedMasks | None = None
    seen: list[NDArray[np.uint8]] = []  # the object's colours on each keyframe so far
    first_track: MaskTracker | None = None  # the first keyframe's, past the second keyframe
    first_masks: PackedMasks | None = None  # its masks there
    n = 0
    for t, item in enumerate(src.frames()):
        rgb = _rgb(item)
        if tracker is None:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
            height, width = rgb.shape[:2]
            check_keyframes(kf, height, width)
            tracker = MaskTracker(cfg, height, width)
            forward = PackedMasks(height, width)
            first_masks = PackedMasks(height, width)
        assert forward is not None and first_masks is not None
        small = tracker.shrink(rgb)
        if t <= last:
            store.put(t, small)
        forward.resize(t + 1)
        first_masks.resize(t + 1)
        if t in kf:
            # From the second keyframe on, the first keyframe's track goes on beside the tracks
            # the later keyframes restart (first_masks, for carry_on); until then it is the tracker.
            if first_track is not None:
                first_track.step(small)
            elif t > first:
                first_track = tracker.fork()
                first_track.step(small)
            if kf[t].any():  # an empty keyframe (the object absent) has no colours to lend
                seen.append(tracker.object_colours(small, kf[t]))
            tracker.reset(small, kf[t], _pooled(seen) if seen else None)
        elif t > first:
            forward[t] = tracker.step(small)
            forward.confidence[t] = tracker.confidence
            if first_track is not None:
                first_masks[t] = first_track.step(small)
        if progress is not None:
            progress(1)
        n = t + 1
    if tracker is None or forward is None or first_masks is None:
        raise MaskError("the video has no frames; nothing to propagate the keyframe masks over")
    # No keyframe seen: one lies beyond the clip's end (the caller's check says so).
    colours = _pooled(seen) if seen else np.zeros((0, 3), np.uint8)
    return forward, first_masks, n, tracker.height, tracker.width, tracker, colours
