"""Keyframe masks -> a mask on every frame, tracked with optical flow in both directions.

A user marks the object on a few keyframes; this module carries each keyframe mask forward (to
the next keyframe or the end of the clip) and backward (to the previous keyframe or the start).
Where two keyframes bracket a frame, both directions are combined (their union: see
:func:`combine`).

One tracking step (frame ``a`` -> neighbour ``b``), at the reduced working size of the flow:

1. Dense DIS flow both ways, ``a -> b`` and ``b -> a``, and their forward-backward error.
2. *Object motion.* Flow near the object's outline mixes object and background motion and is wrong
   where something passes in front, so the object's own flow is taken from its interior only
   (eroded mask, forward-backward consistent pixels) and spread over the whole object by normalised
   Gaussian averaging at a scale tied to the object's size. The mask is splatted along that flow.
3. *Colour re-anchoring.* GrabCut (on the box around the mask, at most 40k pixels) re-fits the
   outline to frame ``b``'s colours: the splatted mask eroded by 2 px is sure object (so
   see-through parts and thin limbs are not cut away), the rest of it probable object, a band of
   ``refine_band_px`` around it probable background. Its growth beyond the splatted mask is kept
   only where the colour is more the object's than the background's (histograms of the object's
   core and of a ring around it), so a mask holding background colours (a wheel, a strip of
   ground) does not spread over the background. The result is carried to the next step.
4. The frame's hole is that mask at full size, grown by ``safety_px``: a missed part of the
   object leaves a ghost in the result, which is worse than a slightly larger hole.

Measured on 7 DAVIS clips (bench/mask_propagation.py): see the numbers in that script's output;
thin objects seen through (bicycle wheels) and objects that grow fast (zooms) are the hard cases.

Masks are kept bit-packed and zlib-compressed (a few KB per frame); frames are never kept in
memory: the backward pass reads working-size copies written to a temporary file during the forward
pass.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.config import PropagationConfig, RunConfig
from lama_video.errors import MaskError
from lama_video.flow import FlowEstimator, fb_error, resize, working_scale

log = logging.getLogger(__name__)

__all__ = [
    "FrameSource",
    "MaskTracker",
    "PackedMasks",
    "check_keyframes",
    "combine",
    "holes",
    "load_keyframes",
    "propagate_keyframes",
    "propagate_masks",
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
        return source  # type: ignore[return-value]
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

    def __len__(self) -> int:
        return len(self._items)

    def resize(self, n: int) -> None:
        """Make room for ``n`` masks (new slots are empty masks until set)."""
        self._items.extend([None] * (n - len(self._items)))
        del self._items[n:]

    def append(self, mask: NDArray[np.bool_]) -> None:
        """Append an (H, W) bool mask."""
        self._items.append(self._pack(mask))

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
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _dilate(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    if radius <= 0:
        return mask
    return cv2.dilate(mask.view(np.uint8), _disk(radius)).view(bool)


def _erode(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    if radius <= 0:
        return mask
    return cv2.erode(mask.view(np.uint8), _disk(radius)).view(bool)


def _bbox(mask: NDArray[np.bool_], pad: int) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the True pixels grown by ``pad``, clipped; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (max(0, rows[0] - pad), min(h, rows[-1] + pad + 1),
            max(0, cols[0] - pad), min(w, cols[-1] + pad + 1))


# --------------------------------------------------------------------------------------------------
# One tracking step


def object_flow(mask: NDArray[np.bool_], flow: NDArray[np.float32],
                fb_err: NDArray[np.float32]) -> NDArray[np.float32]:
    """The object's own motion at each of its pixels, and its typical (median) motion.

    Flow is trusted only in the object's interior (mask eroded by 2 px) where the forward-backward
    error is small. Trusted flow is spread over the whole object by normalised Gaussian averaging
    with a scale of 1/12 of the object's size, so the outline moves with the object, not with the
    background that the flow smears across it.

    Args:
        mask: (H, W) bool object mask in the source frame.
        flow: (H, W, 2) float32 flow source -> target (pixels).
        fb_err: (H, W) float32 forward-backward error of ``flow`` (pixels).

    Returns:
        (H, W, 2) float32 flow, valid on the mask's bounding box (zero outside it).
    """
    out = np.zeros_like(flow)
    box = _bbox(mask, 0)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    m = mask[y0:y1, x0:x1]
    f = flow[y0:y1, x0:x1]
    speed = np.linalg.norm(f, axis=-1)
    reliable = _erode(m, 2) & (fb_err[y0:y1, x0:x1] < 1.0 + 0.1 * speed)
    if reliable.sum() < 10:
        reliable = m
    median = np.median(f[reliable], axis=0).astype(np.float32)
    sigma = max(2.0, max(y1 - y0, x1 - x0) / 12.0)
    weight = reliable.astype(np.float32)
    blur_w = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    blur_f = cv2.GaussianBlur(f * weight[..., None], (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    # A small prior towards the median motion keeps pixels far from any reliable one defined.
    eps = 1e-3
    out[y0:y1, x0:x1] = (blur_f + eps * median) / (blur_w[..., None] + eps)
    return out


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


def colour_refine(rgb: NDArray[np.uint8], mask: NDArray[np.bool_], *, band_px: int,
                  core_px: int, iterations: int = 2, max_pixels: int = 40_000,
                  ) -> NDArray[np.bool_]:
    """Fit ``mask`` to the colours of ``rgb`` with GrabCut, within ``band_px`` of its outline.

    GrabCut (Rother et al. 2004) learns colour mixtures of object and background from the seeds
    and cuts along colour edges. It runs on the box around the mask, scaled down to at most
    ``max_pixels`` (its cost grows with the box's area; the outline it finds is then accurate to a
    pixel or two of the working size, which the safety margin covers).

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        mask: (H, W) bool predicted object mask.
        band_px: how far outside the prediction the object may grow.
        core_px: the prediction eroded by this much is kept as sure object.
        iterations: GrabCut iterations.
        max_pixels: the box is downscaled to at most this many pixels.

    Returns:
        (H, W) bool refined mask (the prediction itself where GrabCut cannot run).
    """
    box = _bbox(mask, band_px + 8)
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
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        m = cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        core = cv2.resize(core.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
        band_px = max(1, round(band_px * s))
    labels = np.full(m.shape, cv2.GC_BGD, np.uint8)
    labels[_dilate(m, band_px)] = cv2.GC_PR_BGD
    labels[m] = cv2.GC_PR_FGD
    labels[core & m] = cv2.GC_FGD
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(img), labels, None, bgd, fgd, iterations,
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # e.g. no background sample at all (object fills the box)
        return mask
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if s < 1.0:
        fg = cv2.resize(fg.astype(np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR) > 0.5
    out = np.zeros_like(mask)
    out[y0:y1, x0:x1] = fg
    return out


def object_colour_share(rgb: NDArray[np.uint8], obj: NDArray[np.bool_], bg: NDArray[np.bool_],
                        query: NDArray[np.bool_]) -> NDArray[np.float32]:
    """How object-like each ``query`` pixel's colour is, from colour histograms, in [0, 1].

    Histograms (16 levels per channel) of the ``obj`` and ``bg`` pixels give p(colour | object)
    and p(colour | background); the share is p_obj / (p_obj + p_bg) (0.5 where neither knows the
    colour).

    Returns:
        (n,) float32 shares of the True pixels of ``query``, in ``np.nonzero`` order.
    """
    def codes(sel: NDArray[np.bool_]) -> NDArray[np.int64]:
        q = (rgb[sel] >> 4).astype(np.int64)
        return (q[:, 0] << 8) | (q[:, 1] << 4) | q[:, 2]

    def density(sel: NDArray[np.bool_]) -> NDArray[np.float64]:
        hist = np.bincount(codes(sel), minlength=4096).astype(np.float64) + 0.5
        return hist / hist.sum()

    p_obj, p_bg = density(obj), density(bg)
    c = codes(query)
    return (p_obj[c] / (p_obj[c] + p_bg[c])).astype(np.float32)


#: GrabCut keeps the tracked mask eroded by this many working pixels as sure object: it may trim the
#: outline but not cut parts away (see-through wheels and thin limbs look like background to it).
_CORE_PX = 2


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

    def shrink(self, rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Full-size (H, W, 3) uint8 frame -> working size."""
        return resize(rgb, self.work_size)

    def reset(self, small_rgb: NDArray[np.uint8], mask: NDArray[np.bool_]) -> None:
        """Start from a keyframe: its working-size frame and its full-size (H, W) bool mask."""
        soft = resize(mask.astype(np.float32), self.work_size)
        self._state = soft > 0.25
        self._prev_rgb = small_rgb

    def step(self, small_rgb: NDArray[np.uint8]) -> NDArray[np.bool_]:
        """Track into the next frame (working size (h, w, 3) uint8); return its full-size mask."""
        if self._state is None or self._prev_rgb is None:
            raise RuntimeError("MaskTracker.step() called before reset()")
        state, prev = self._state, self._prev_rgb
        self._prev_rgb = small_rgb
        if not state.any():
            return np.zeros((self.height, self.width), bool)
        ff, fb = self._flows(prev, small_rgb, state)
        err = fb_error(ff, fb)
        motion = object_flow(state, ff, err)
        moved = splat(state, motion)

        if not self.config.colour_refine:
            self._state = moved
            return self._to_full(moved)
        band = max(2, round(self.config.refine_band_px * self._px))
        refined = colour_refine(small_rgb, moved, band_px=band, core_px=_CORE_PX)
        grown = refined & ~moved
        if grown.any():
            # GrabCut's colour models are learnt from the prediction itself, so where the mask
            # holds background colours (a see-through wheel, a strip of ground) it would spread
            # over the background frame after frame. Growth is kept only where the colour is
            # more the object's than the background's, by histograms of the object's core and of
            # the ring around it.
            ring = _dilate(moved, 2 * band) & ~_dilate(moved, band)
            share = object_colour_share(small_rgb, _erode(moved, 2), ring, grown)
            keep = np.zeros_like(grown)
            keep[grown] = share > 0.5
            refined = (refined & moved) | keep
        self._state = refined
        return self._to_full(refined)

    def _flows(self, prev: NDArray[np.uint8], cur: NDArray[np.uint8], state: NDArray[np.bool_],
               ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Flow prev -> cur and cur -> prev, computed on the box around the object only.

        Outside the box (the object's box grown by half its size, at least 48 px, to cover its
        motion and the background band GrabCut looks at) the flow is zero; nothing reads it.
        """
        h, w = state.shape
        box = _bbox(state, 0)
        assert box is not None
        size = max(box[1] - box[0], box[3] - box[2])
        y0, y1, x0, x1 = _bbox(state, max(48, size // 2)) or (0, h, 0, w)
        ff = np.zeros((h, w, 2), np.float32)
        fb = np.zeros((h, w, 2), np.float32)
        a, b = prev[y0:y1, x0:x1], cur[y0:y1, x0:x1]
        ff[y0:y1, x0:x1] = self._flow(a, b)
        fb[y0:y1, x0:x1] = self._flow(b, a)
        return ff, fb

    def _to_full(self, small: NDArray[np.bool_]) -> NDArray[np.bool_]:
        full = resize(small.astype(np.float32), (self.width, self.height)) > 0.5
        return _dilate(full, self.config.safety_px)


# --------------------------------------------------------------------------------------------------
# Whole-clip propagation


def check_keyframes(keyframes: Mapping[int, NDArray[Any]], height: int | None = None,
                    width: int | None = None,
                    n_frames: int | None = None) -> dict[int, NDArray[np.bool_]]:
    """Validate keyframe masks and return them as {index: (H, W) bool}, sorted by index.

    Args:
        keyframes: {frame index: (H, W) mask}; bool, or uint8/other numbers where > 0 is the hole.
        height, width: frame size to check against (skipped when None).
        n_frames: clip length to check indices against (skipped when None).

    Raises:
        MaskError: no keyframes, an index outside the clip, a mask that is not 2-D, of the wrong
            size, or empty.
    """
    if not keyframes:
        raise MaskError("no keyframe mask given; pass at least one --keyframe-mask FRAME:PATH")
    out: dict[int, NDArray[np.bool_]] = {}
    for index in sorted(keyframes):
        mask = np.asarray(keyframes[index])
        if not isinstance(index, (int, np.integer)) or index < 0:
            raise MaskError(f"keyframe index {index!r} is not a frame number; use 0 for the first "
                            "frame")
        if n_frames is not None and index >= n_frames:
            raise MaskError(f"keyframe {index} is outside the clip (frames 0..{n_frames - 1}, "
                            f"{n_frames} frames); use a frame number below {n_frames}")
        if mask.ndim != 2:
            raise MaskError(f"keyframe mask {index} has shape {mask.shape}, expected a 2-D (H, W) "
                            "mask; give a single-channel image")
        if height is not None and width is not None and mask.shape != (height, width):
            raise MaskError(f"keyframe mask {index} is {mask.shape[1]}x{mask.shape[0]} but the "
                            f"video frames are {width}x{height}; give a mask of the frame size")
        binary = mask if mask.dtype == bool else mask > 0
        if not binary.any():
            raise MaskError(f"keyframe mask {index} is empty (no pixel marked); mark the object "
                            "to remove in white on that frame")
        out[int(index)] = binary
    return out


def combine(forward: NDArray[np.bool_], backward: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Combine the masks tracked from the previous and the next keyframe: their union.

    Each direction can lose a part of the object (or all of it, behind an occluder) that the other
    still has. A distance-weighted interpolation of the two outlines (signed distance fields) was
    measured too: it lies inside the union by construction and covered less (96.5% against 97.5%
    on 7 DAVIS clips with a keyframe every 10 frames), for a smaller area (1.9x against 2.4x the
    object's).

    Args:
        forward, backward: (H, W) bool masks from the previous / next keyframe.

    Returns:
        (H, W) bool combined mask.
    """
    return forward | backward


def load_keyframes(keyframes: Mapping[int, NDArray[Any] | str | os.PathLike[str]],
                   cfg: RunConfig | None = None) -> dict[int, NDArray[np.bool_]]:
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
        forward, n, height, width, tracker = _forward_pass(src, kf, pcfg, store, progress)
        check_keyframes(kf, height, width, n)
        result = PackedMasks(height, width)
        result.resize(n)
        for i in indices:
            result[i] = kf[i]
        # Backward pass: from each keyframe back to the previous one (or the clip's start).
        bounds = [-1, *indices]
        for k_prev, k_next in itertools.pairwise(bounds):
            if k_next - k_prev <= 1:
                continue
            tracker.reset(store.get(k_next), kf[k_next])
            for t in range(k_next - 1, k_prev, -1):
                back = tracker.step(store.get(t))
                result[t] = back if k_prev < 0 else combine(forward[t], back)
                if progress is not None:
                    progress(1)
        for t in range(last + 1, n):
            result[t] = forward[t]
        log.debug("propagated %d keyframe mask(s) over %d frames (first %d, last %d)",
                  len(kf), n, first, last)
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
) -> Iterator[NDArray[np.bool_]]:
    """One (H, W) bool mask per frame, in order: :func:`propagate_masks` as an iterator.

    The keyframe masks are read and checked (files, emptiness, size against ``source.info`` when
    it has one, indices against ``n_frames`` when given) before this returns; the tracking runs
    at the first ``next()``.

    Raises:
        MaskError: as :func:`propagate_masks`.
    """
    run_cfg = cfg if isinstance(cfg, RunConfig) else None
    src = _as_source(source)
    kf = check_keyframes(load_keyframes(keyframes, run_cfg), *_known_size(src), n_frames=n_frames)

    def masks() -> Iterator[NDArray[np.bool_]]:
        yield from propagate_masks(src, kf, cfg, progress=progress)

    return masks()


def holes(
    source: Frames,
    keyframes: Mapping[int, NDArray[Any] | str | os.PathLike[str]],
    cfg: RunConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    n_frames: int | None = None,
) -> Iterator[NDArray[np.bool_]]:
    """The holes ``remove`` fills for these keyframes: propagated masks + ``masks.dilate_px``.

    What ``lama-video mask`` writes; (H, W) bool per frame, True = hole. Keyframes are checked
    before this returns (see :func:`propagate_keyframes`).
    """
    from lama_video import masks as masks_mod

    run_cfg = cfg or RunConfig()
    masks = propagate_keyframes(source, keyframes, run_cfg, progress=progress, n_frames=n_frames)

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


def _forward_pass(src: FrameSource, kf: dict[int, NDArray[np.bool_]], cfg: PropagationConfig,
                  store: _FrameStore, progress: Callable[[int], None] | None,
                  ) -> tuple[PackedMasks, int, int, int, MaskTracker]:
    first, last = min(kf), max(kf)
    tracker: MaskTracker | None = None
    forward: PackedMasks | None = None
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
        assert forward is not None
        small = tracker.shrink(rgb)
        if t <= last:
            store.put(t, small)
        forward.resize(t + 1)
        if t in kf:
            tracker.reset(small, kf[t])
        elif t > first:
            forward[t] = tracker.step(small)
        if progress is not None:
            progress(1)
        n = t + 1
    if tracker is None or forward is None:
        raise MaskError("the video has no frames; nothing to propagate the keyframe masks over")
    return forward, n, tracker.height, tracker.width, tracker
