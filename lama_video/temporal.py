"""The temporal engine: flow-guided propagation, keyframe hallucination, smoothing, windows.

For every window of frames (``window_frames``, consecutive windows share ``overlap_frames``):

1. **Flow.** DIS forward and backward flow between neighbouring frames, at a working size whose
   longest side is at most ``flow_max_side_px`` (all geometry below happens at that size; colours
   are always sampled from the full-resolution frames). In both frames of a pair the union of
   their holes is filled smoothly from its border, so DIS sees the same textureless patch at the
   same place in both and nothing there moves with the object. Flow is only read near the holes,
   so DIS runs on the box around the grown union plus a margin (``_FLOW_MARGIN_PX``) and the field
   is extended beyond it by replicating its edges.
2. **Flow completion.** Inside the union, grown by ``flow_grow_px`` so that the object's motion at
   its edge does not leak in, the flow is replaced by the camera motion fitted on a ring around it
   (in fast motion, where neither field alone is one motion, one motion fitted on the ring pixels
   where the two fields agree, forward and inverted; the harmonic interpolation of the flow around
   it where no single motion fits; :mod:`lama_video.flow_completion`). A pair's two fields depend
   on that pair alone.
3. **Propagation.** Two recurrent passes (past -> future, future -> past) carry, for every hole
   pixel, a *source address*: the nearest frame in that direction where the point is outside every
   hole and its position there. A pass only chains addresses (bilinear, nearest at seams between
   sources) and never resamples colours, so colour is read exactly once, from the full-size source
   frame, with a bicubic kernel (bilinear would blur every sub-pixel copy).
   A chain stops at a pixel whose forward-backward flow error exceeds ``consistency_px`` or after
   ``max_propagation_frames`` frames. The two directions are blended, nearer sources weighing more.
4. **Seam correction.** The colour difference between each frame and its propagated prediction on a
   thin ring just outside the hole is spread smoothly over the hole (a membrane, i.e. Poisson
   blending with the propagated gradients), so lighting changes over time leave no patch edges.
   **Confidence.** The ring is propagated like the hole, so where its prediction disagrees with
   the frame (beyond a uniform colour shift) the completed flow is wrong there (typically a hole
   over a moving object). That mismatch, spread over the hole, blends the propagated colours
   towards the frame's own harmonic fill (weight ``1 / (1 + (mismatch / mismatch_scale)^2)``),
   which keeps ``fallback_detail`` of the copy's fine detail: a mismatching copy is mostly
   misplaced by a few pixels, and a smooth fill alone is a smear. That detail moves where the
   copy is wrong, so smoothing (step 6) averages it over time in full (blending towards the
   invented (keyframe) fill instead: texture ratio +0.03, flicker ratio +0.05, -0.21 dB).
   **Clean plates** (``references``, ``remove --reference``): a frame given with the object
   painted out by hand has nothing to fill, so its pixels in the hole are propagated like any
   footage. Pixels still missing in frames the propagation does not reach from it (farther than
   ``max_propagation_frames``, or in other windows) take the nearest plate aligned by one
   homography, where it fits around the hole.
5. **Hallucination.** Pixels that no frame shows are filled by the image engine on the first
   keyframe (frame index a multiple of ``keyframe_interval``) that misses some; every later
   keyframe takes that invention pulled along the flow where it still meets the frame around it
   (``_KEY_RING_FITS``: a still shot, a steady pan), and the others are invented in one batched
   call. Every other frame pulls the keyframes' fill along the flow from its nearest keyframes,
   so the invented content is the same over time.
   Its light is the frame's: where the ring of known pixels around the invented ones, pulled
   alike, is off the frame by more than a seam's few levels (the keyframe's fill took its
   colours from something that has moved since, or the light changed), the difference is spread
   over the invented pixels (:func:`_stale_shift`).
   Whatever is still missing (rare) is filled by the image engine frame by frame. Near the
   hole's edge (within ``_PIN_FADE_PX``, in full within ``_EDGE_FULL_PX``) an invented pixel
   takes the frame's own harmonic fill instead (:func:`_pin_invented_edge`): a pixel or two
   from real ones (all of a thin hole), they pin it down better than an invention carried
   along a guessed flow.
6. **Smoothing.** Inside holes, each frame is blended with its ``smoothing_radius`` flow-aligned
   neighbours on each side, weighted by flow consistency on a loose scale (``_SMOOTH_SLACK``
   times ``consistency_px``: completed flows disagree wherever the hole moves)
   (``smoothing_strength``). The blend's coarse part is applied in full, its fine detail only by
   ``smoothing_detail``: averaging neighbours that are not aligned to the pixel keeps the flicker
   down but blurs away the detail of every one of them. A propagated pixel that step 4 doubts
   has its detail averaged in full (the share rises with the doubt): what stays is the detail
   its neighbours agree on. Near the hole's edge (within
   ``_EDGE_HOLD_PX``), smoothing is held back by the confidence of step 4: a pixel whose flow
   failed to predict the ring has the frame's own fill there, which its real neighbours pin down
   (per-frame Telea beats propagation within 2 px of the edge on such pairs), and averaging it
   along that same failed flow only mixes in misplaced content.
7. **Windows.** Results of overlapping windows are cross-faded linearly over the overlap, so nothing
   pops at window borders. The last window runs on to the clip's end when only a few frames
   are left after it (:func:`window_tail`), instead of a short window of its own. A window's
   frames are handed out in order as each one's smoothing is done, so the encoder works on
   them while the rest are smoothed (it used to wait for the whole window, and on the last
   one it then worked alone). At most
   ``window_frames`` plus that tail plus one input frames are held at any time; for large
   frames fewer (:func:`window_for`: ``window_max_mb`` bounds a window's frames, the tail
   included), and each filled frame is held as a copy of the box around its hole
   (:class:`_Canvas`).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video import flow as fl
from lama_video.config import TemporalConfig
from lama_video.engines import ImageEngine
from lama_video.engines.base import WORKER_THREADS
from lama_video.errors import MaskError
from lama_video.flow_completion import harmonic_fill, homography_fill
from lama_video.qc import QcInfo
from lama_video.video import Frame

log = logging.getLogger(__name__)

Item = tuple[Frame, NDArray[np.bool_]]
Result = tuple[Frame, NDArray[np.bool_], NDArray[np.uint8]]

_SEAM_RING_PX = 2  # width of the ring outside the hole where prediction errors are measured
_SEAM_CELL_PX = 4  # the seam membrane is solved on a grid this many times coarser
# Pulling hallucinated content from a keyframe ignores flow inconsistency (completed flows of two
# frames disagree where the hole moves fast): a slightly misplaced sample of invented texture is
# invisible, a per-frame re-invention flickers. Only points that leave the frame are dropped.
_TRACK_SLACK = float("inf")
_CROP_MARGIN_PX = 48  # context around leftover pixels given to the image engine
#: A keyframe takes the first keyframe's invention, pulled along the flow, only where the ring
#: of known pixels around it, pulled alike, meets the frame within this RMS (levels).
_KEY_RING_FITS = 12.0
#: A clean plate is aligned to a frame on the scene beyond this far from the frame's hole (px),
#: and its colours matched on a ring this wide around the hole.
_PLATE_MARGIN_PX = 8
#: ... and used only where, on that ring, the aligned plate (its light matched) is within this
#: many grey levels of the frame (median over the ring): one homography explains a still camera,
#: a pan or a flat scene; where parallax or the scene's own motion leave it wrong, a plate
#: carried so is worse than the image engine's invention (bench/reference_plate.py).
_PLATE_MISFIT = 3.0
#: A plate is its frame with the object painted out: outside the hole the two differ by at most
#: this (median grey levels; an export by another decoder or a light touch-up stays well under).
_PLATE_SAME = 8.0
#: An invention pulled from a keyframe is shifted towards the frame around it by what its ring
#: is off beyond this (RMS grey levels; see :func:`_stale_shift`). ``bench/fill_quality.py``,
#: 432x240 / 854x480 / ``--shift 5``: hole PSNR +0.02 / +0.06 / +0.06 dB, flicker 1.048 -> 1.044
#: / 1.203 -> 1.191 / 1.162 -> 1.141 (worst pair 1.62 -> 1.61 / 2.001 -> 1.987 / 2.006 ->
#: 1.832), the lowest SSIM against Telea's +0.0003 -> +0.0004 / +0.0004 -> +0.0011 / -0.0023 ->
#: -0.0013; texture 0.712 -> 0.705 / 0.721 -> 0.702 / 0.749 -> 0.737 (the seams it removes
#: counted as detail). 8 levels: texture 0.704 / 0.697 / 0.735; the whole shift: 0.700 / 0.689
#: (worst pair 0.496 at 432x240).
_STALE_LEVELS = 12.0
_CONF_CELL_PX = 8  # ring mismatch (propagation confidence) is averaged on cells this large
# Smoothing is held back by (1 - confidence) in full up to ``_EDGE_FULL_PX`` from the hole's edge,
# fading to nothing at ``_EDGE_HOLD_PX`` (13 pairs at 432x240: hole PSNR +0.22 dB, every pair up;
# the worst pair's flicker 2.30 -> 1.97; 6 px: +0.24 dB, flicker mean +0.01).
_EDGE_FULL_PX = 1.5
_EDGE_HOLD_PX = 4.0
# Invented pixels take the frame's own smooth fill in full up to ``_EDGE_FULL_PX`` from the
# hole's edge, fading to the invention at this (:func:`_pin_invented_edge`; 854x480: fading at
# 4 px, 6 px, 8 px, and 6 px from 2.5 px: flicker 1.209, 1.204, 1.205, 1.207, worst pair 2.036,
# 2.003, 2.017, 2.019; texture 0.727, 0.722, 0.718, 0.722).
_PIN_FADE_PX = 6.0
# Smoothing tolerates this many times ``consistency_px`` of forward-backward error per step (and
# weighs neighbours by it on that scale): inside holes both flows are completions, so their error
# is large wherever the hole moves and a tight gate would leave those pixels unsmoothed (7 DAVIS
# pairs, in-process: 1.0 -> 12 gives hole PSNR 19.55 -> 19.67, flicker 1.37 -> 1.28).
_SMOOTH_SLACK = 12.0
#: Worker threads for the frame pairs' flows, each frame's finishing and its smoothing (each
#: item independent): the image engines' rule (:data:`lama_video.engines.base.WORKER_THREADS`).
_FLOW_THREADS = WORKER_THREADS
#: Frames finished on the worker threads may wait this many deep behind the propagation pass.
_OVERLAP_AHEAD = 4
#: DIS on a box starts from DIS on the whole frames shrunk this many times (:func:`_coarse_start`).
_COARSE_FACTOR = 4
_FLOW_MARGIN_PX = 48  # flow is estimated on the holes' box grown by this (working-size px)
#: A window's stages and the share of its frames' progress each reports as it runs (the rest,
#: ``1 - sum``, as each frame is yielded). Roughly their shares of a window's time at 854x480
#: with the exemplar engine (profiled), so a progress bar moves evenly while a window is worked on.
_STAGE_SHARES = {"flows": 0.2, "forward": 0.15, "backward": 0.2, "invent": 0.15, "smooth": 0.1}
_WORK_SHARE = sum(_STAGE_SHARES.values())  # the rest of a frame's share: its yield
_FlowPair = tuple[NDArray[np.float32], NDArray[np.float32]]  # (t -> t+1, t+1 -> t)


@dataclass
class _FrameData:
    """Working-size data of one frame (cached across the overlap of two windows)."""

    gray: NDArray[np.uint8]  # (h, w) luma at working size
    region: NDArray[np.bool_]  # (h, w) cells whose source address is chained (hole grown 1 cell)


@dataclass
class _Pred:
    """Propagated colours for a frame's pixel list (one direction)."""

    color: NDArray[np.float32]  # (n, 3) RGB
    dist: NDArray[np.float32]  # (n,) frames to the source; inf = no source


#: A canvas copies the hole's box grown by this: a bilinear kernel (2 px) that reaches past the
#: copy's edge then touches no hole pixel, so such points may be read from the frame itself.
_CANVAS_MARGIN_PX = 4


class _Canvas:
    """A frame being filled: the frame as decoded and a copy of the box around its hole.

    Only hole pixels are ever written, so outside the box the filled frame is the frame itself.
    Holding the box instead of a full copy keeps a window's memory at its input frames plus the
    holes' boxes (a 60-frame window of 1080p frames held 373 MB of full copies, twice over while
    smoothing). Every read gives exactly what the same read of the full filled frame gives.
    """

    __slots__ = ("crop", "frame", "x0", "x1", "y0", "y1")

    def __init__(self, frame: NDArray[np.uint8], hole: NDArray[np.bool_] | None) -> None:
        self.frame = frame
        self.crop: NDArray[np.uint8] | None = None
        self.y0 = self.y1 = self.x0 = self.x1 = 0
        if hole is not None and hole.any():
            self.y0, self.y1, self.x0, self.x1 = _bbox(hole, _CANVAS_MARGIN_PX)
            self.crop = frame[self.y0 : self.y1, self.x0 : self.x1].copy()

    def put(self, ys: NDArray[np.intp], xs: NDArray[np.intp], values: NDArray[np.uint8]) -> None:
        """Write hole pixels (full-frame coordinates)."""
        assert self.crop is not None
        self.crop[ys - self.y0, xs - self.x0] = values

    def get(self, ys: NDArray[np.intp], xs: NDArray[np.intp]) -> NDArray[np.uint8]:
        """Read hole pixels (full-frame coordinates)."""
        if self.crop is None:
            return self.frame[ys, xs]
        return self.crop[ys - self.y0, xs - self.x0]

    def sample(self, xs: NDArray[np.float32], ys: NDArray[np.float32]) -> NDArray[np.uint8]:
        """:func:`lama_video.flow.sample_points` (bilinear) of the filled frame."""
        if self.crop is None or xs.size == 0:
            return fl.sample_points(self.frame, xs, ys)
        # The points whose kernel lies in the copy, or leaves the image where the copy does, are
        # read from the copy; the others (their kernel touches no hole pixel) from the frame.
        h, w = self.frame.shape[:2]
        inf = np.float32(np.inf)
        near = (
            (xs >= (self.x0 + 1 if self.x0 > 0 else -inf))
            & (xs <= (self.x1 - 2 if self.x1 < w else inf))
            & (ys >= (self.y0 + 1 if self.y0 > 0 else -inf))
            & (ys <= (self.y1 - 2 if self.y1 < h else inf))
        )
        # Shifting by whole pixels keeps the sub-pixel offsets (and OpenCV's fixed-point weights)
        # exactly; a kernel cut by the copy's edge is cut there by the image's edge.
        inner = np.flatnonzero(near)
        if inner.size == xs.size:
            return fl.sample_points(self.crop, xs - np.float32(self.x0), ys - np.float32(self.y0))
        out = np.empty((xs.size, *self.frame.shape[2:]), self.frame.dtype)
        out[inner] = fl.sample_points(
            self.crop, xs[inner] - np.float32(self.x0), ys[inner] - np.float32(self.y0)
        )
        outer = np.flatnonzero(~near)
        out[outer] = fl.sample_points(self.frame, xs[outer], ys[outer])
        return out

    def window(self, y0: int, y1: int, x0: int, x1: int) -> NDArray[np.uint8]:
        """A copy of the filled frame's ``[y0:y1, x0:x1]``."""
        out = self.frame[y0:y1, x0:x1].copy()
        if self.crop is not None:
            iy0, iy1 = max(y0, self.y0), min(y1, self.y1)
            ix0, ix1 = max(x0, self.x0), min(x1, self.x1)
            if iy0 < iy1 and ix0 < ix1:
                out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = self.crop[
                    iy0 - self.y0 : iy1 - self.y0, ix0 - self.x0 : ix1 - self.x0
                ]
        return out

    def image(self) -> NDArray[np.uint8]:
        """The filled frame: a new array, or the frame itself when it has no hole."""
        if self.crop is None:
            return self.frame
        h, w = self.frame.shape[:2]
        return self.window(0, h, 0, w)


def effective_overlap(window: int, overlap: int) -> int:
    """Frames two consecutive windows share: ``overlap``, at most ``window - 1``."""
    return min(overlap, window - 1)


#: The shortest window the byte budget (``window_max_mb``) may leave.
_MIN_WINDOW = 4


def window_for(cfg: TemporalConfig, height: int, width: int, px_bytes: int = 3) -> tuple[int, int]:
    """``(window, overlap)`` in frames for frames of ``height`` x ``width``.

    ``window_frames``, cut so that the window's RGB frames take at most ``window_max_mb`` (but
    not below ``_MIN_WINDOW`` frames); the overlap is cut in the same proportion (at least one
    frame if there is one). Everything the engine holds per frame grows with the frame (the
    hole masks, the holes' pixel lists and propagated colours, the canvases), so this bounds its
    memory at any frame size: 1080p frames get 21-frame windows by default, 480p ones 60.
    ``px_bytes``: what a frame holds a pixel (3; 9 with the 16-bit copy of a source of more than
    8 bits a sample, :attr:`Frame.deep`).
    """
    window = cfg.window_frames
    overlap = effective_overlap(window, cfg.overlap_frames)
    fit = _budget_frames(cfg, height, width, px_bytes)
    if fit is not None:
        cut = max(min(window, _MIN_WINDOW), min(window, fit))
        if cut < window:
            overlap = min(cut - 1, max(1, round(overlap * cut / window))) if overlap else 0
            window = cut
    return window, overlap


def window_tail(cfg: TemporalConfig, height: int, width: int, px_bytes: int = 3) -> int:
    """Frames beyond a full window that the last window takes in itself, for frames of ``height``
    x ``width``.

    A clip a few frames longer than a window would otherwise end on a short window that repeats
    the ``overlap`` frames before it to make a handful of new ones (a 70-frame clip at 480p:
    windows of 60 and 20 frames, 80 frames of work for 70; the short one also sees little of the
    clip). The last window instead runs on to the end when at most this many frames are left:
    up to a quarter of a window (the engine reads that many frames ahead of every window to
    know), fewer than a window's step (so only the last window can be the one that does), and
    only as far as ``window_max_mb`` allows (none at 1080p by default, whose windows the budget
    already cuts; 15 frames at 480p).
    """
    window, overlap = window_for(cfg, height, width, px_bytes)
    tail = min(window // 4, window - overlap - 1)
    fit = _budget_frames(cfg, height, width, px_bytes)
    if fit is not None:
        tail = min(tail, fit - window)
    return max(0, tail)


def _budget_frames(cfg: TemporalConfig, height: int, width: int, px_bytes: int = 3) -> int | None:
    """Frames of ``height`` x ``width`` (``px_bytes`` a pixel) that ``window_max_mb`` holds
    (None: no budget)."""
    if cfg.window_max_mb <= 0:
        return None
    return int(cfg.window_max_mb * 2**20 // max(1, height * width * px_bytes))


def plan_windows(n_frames: int, window: int, overlap: int, tail: int = 0) -> list[tuple[int, int]]:
    """``[start, stop)`` of every window :meth:`TemporalEngine.process` makes for ``n_frames``.

    Window k starts at ``k * (window - overlap)``; the first one that reaches the last frame, or
    comes within ``tail`` frames of it (:func:`window_tail`), is the last and runs to the end (it
    may be shorter or longer than ``window``). Consecutive windows share ``overlap`` frames.
    """
    overlap = effective_overlap(window, overlap)
    step = window - overlap
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        if start + window + tail >= n_frames:
            out.append((start, n_frames))
            return out
        out.append((start, start + window))
        start += step


class TemporalEngine:
    """Flow-guided video inpainting over overlapping windows (see the module docstring).

    Args:
        image_engine: fills pixels that no frame shows (LaMa; the exemplar engine without weights).
        cfg: the ``temporal`` config section.
    """

    def __init__(self, image_engine: ImageEngine, cfg: TemporalConfig | None = None) -> None:
        self.image_engine = image_engine
        self.cfg = cfg if cfg is not None else TemporalConfig()
        self.name = f"temporal {image_engine.name}"
        self._flow = fl.FlowEstimator(
            preset=self.cfg.flow_preset, max_side_px=self.cfg.flow_max_side_px
        )
        # Set record_qc to keep, for each frame, where its hole pixels came from (QcInfo); the
        # consumer takes them with pop_qc (they are held only until then).
        self.record_qc = False
        self._qc: dict[int, QcInfo] = {}
        # Clean plates (After Effects' "reference frames"): {stream position: (H, W, 3) uint8
        # RGB of that frame with the object removed by hand}. A plate's frame is footage with no
        # hole (propagated like any frame); what frames beyond propagation's reach still miss
        # comes from the nearest plate aligned to them (_from_references), before any invention.
        self.references: dict[int, NDArray[np.uint8]] = {}
        # Plates of the empty scene that are no frame of the clip (a clean plate shot on set):
        # aligned to each frame like a far reference, tried after the references.
        self.scene_plates: list[NDArray[np.uint8]] = []
        # Invented pixels near the hole's edge take the frame's own smooth fill
        # (_pin_invented_edge); off where an overlay is un-blended (remove --overlay), whose fit
        # over time reads the fill (see there).
        self.pin_invented_edges = True
        # A keyframe takes the first keyframe's invention pulled along the flow where it fits
        # (_hallucinate); off where an overlay is un-blended, like the pinned edges: over a
        # still part of the scene that fit then reads a fill that no longer varies with the
        # frames (bench/overlays.py: dogs-jump's 55 % text 41.76 -> 32.24 dB).
        self.chain_inventions = True
        # Diagnostics (bench/fill_quality.py --stages): called as (stage, frame index, (H, W, 3)
        # uint8 image, (H, W) bool pixels that stage has filled) after each stage of a window:
        # propagated, seam, confidence, hallucinated, smoothed. None = off (no cost).
        self.stage_hook: Callable[[str, int, NDArray[np.uint8], NDArray[np.bool_]], None] | None = (
            None
        )

    def peek_qc(self, index: int) -> QcInfo | None:
        """As :meth:`pop_qc`, leaving it for the next consumer."""
        return self._qc.get(index)

    def pop_qc(self, index: int) -> QcInfo | None:
        """Where frame ``index``'s hole pixels came from (None unless ``record_qc`` was set)."""
        return self._qc.pop(index, None)

    # ------------------------------------------------------------------ streaming and windows

    def process(
        self, items: Iterable[Item], progress: Callable[[int], None] | None = None
    ) -> Iterator[Result]:
        """Fill the holes of a stream of frames.

        Args:
            items: ``(frame, hole)`` in frame order; ``hole`` is (H, W) bool, True = remove
                (already dilated). All frames have the same size.
            progress: called with whole frames' worth of work done (see :class:`_Progress`): it
                moves while a window is worked on, and by the time a window's last frame is
                yielded it has counted every frame yielded so far (the total is the number of
                frames).

        Yields:
            ``(frame, hole, filled_rgb)`` in input order; ``filled_rgb`` is (H, W, 3) uint8 RGB and
            equals ``frame.rgb`` bit for bit outside ``hole`` (a frame with an empty hole gets its
            own ``frame.rgb`` array back).
        """
        source = iter(items)
        try:
            first = next(source)
        except StopIteration:
            return
        # A source of more than 8 bits: each frame also holds its 16-bit picture (Frame.deep).
        px_bytes = 3 if getattr(first[0], "deep", None) is None else 9
        height, width = first[1].shape[:2]
        window, overlap = window_for(self.cfg, height, width, px_bytes)
        tail = window_tail(self.cfg, height, width, px_bytes)
        source = itertools.chain([first], source)
        buf: list[Item] = []
        carry: list[_Canvas] = []  # previous window's results for buf's first frames
        start = 0  # stream position of buf[0]
        cache_f: dict[int, _FrameData] = {}
        cache_p: dict[int, tuple[NDArray[np.float32], NDArray[np.float32]]] = {}
        ahead: deque[Item] = deque()  # frames read beyond the window
        exhausted = False
        meter = _Progress(progress)
        while True:
            while len(buf) < window and (ahead or not exhausted):
                if ahead:
                    buf.append(ahead.popleft())
                    continue
                try:
                    buf.append(next(source))
                except StopIteration:
                    exhausted = True
            if not buf:
                return
            # Look up to tail + 1 frames ahead: whether this window is the last, and whether it
            # takes in the rest of the clip (plan_windows).
            while len(ahead) <= tail and not exhausted:
                try:
                    ahead.append(next(source))
                except StopIteration:
                    exhausted = True
            if exhausted and len(ahead) <= tail:
                buf.extend(ahead)
                ahead.clear()
            final = exhausted and not ahead
            for k in [k for k in cache_f if k < start]:
                del cache_f[k]
            for k in [k for k in cache_p if k < start]:
                del cache_p[k]
            n_out = len(buf) if final else len(buf) - overlap
            # The window hands out its first n_out frames as their smoothing is done (the
            # encoder works on them while the rest are smoothed), then returns its filled frames.
            work = self._window(buf, start, cache_f, cache_p, meter.window(n_out), n_out)
            n_carry = len(carry)
            try:
                for j in range(n_out):
                    j_out, out = next(work)
                    assert j_out == j, (j_out, j)
                    if j == 0:
                        meter.stages_done()
                    frame, hole = buf[j]
                    if j < n_carry and hole.any():
                        a = (j + 1) / (n_carry + 1)  # this window's weight ramps up
                        hy, hx = np.nonzero(hole)
                        mix = (1.0 - a) * carry[j].get(hy, hx).astype(np.float32) + a * out[hy, hx]
                        out[hy, hx] = np.clip(mix + 0.5, 0, 255).astype(np.uint8)
                    meter.yielded()  # the frame is done: counted as it is handed out
                    yield frame, hole, out
                results = _returned(work)
            finally:
                work.close()  # on an early stop: its worker threads' queued work is cancelled
            if final:
                return
            carry = results[n_out:]
            buf = buf[n_out:]
            start += n_out

    # ------------------------------------------------------------------ one window

    def _window(
        self,
        buf: list[Item],
        start: int,
        cache_f: dict[int, _FrameData],
        cache_p: dict[int, tuple[NDArray[np.float32], NDArray[np.float32]]],
        stage: Callable[[str, float], None] | None = None,
        n_early: int = 0,
    ) -> Generator[tuple[int, NDArray[np.uint8]], None, list[_Canvas]]:
        """Fill every frame of a window; returns its filled frames.

        A generator: the window's first ``n_early`` frames are handed out as ``(t, filled)``, in
        order and each as soon as it is done (during smoothing), while the later ones are still
        worked on; the filled frames it returns are not smoothed for those it handed out.

        ``stage(name, fraction)`` is told, on this thread, what share of each stage of
        ``_STAGE_SHARES`` has just been done (for progress; it may raise to stop the work).
        """
        tick = stage if stage is not None else _no_stage
        n = len(buf)
        frames = [f.rgb for f, _ in buf]
        holes = [h for _, h in buf]
        for t in range(n):
            # A clean plate is that frame with nothing to fill: its pixels in the hole are
            # footage like any other frame's, and propagation carries them along the flow.
            plate = self.references.get(start + t)
            if plate is not None:
                check_plate(plate, frames[t], holes[t], start + t)
                if self.record_qc and holes[t].any():
                    ys, xs = np.nonzero(holes[t])
                    conf = np.ones(ys.size, np.float32)  # the plate is footage, none invented
                    self._qc[buf[t][0].index] = QcInfo(ys=ys, xs=xs, confidence=conf)
                frames[t], holes[t] = plate, np.zeros_like(holes[t])
        has = [bool(h.any()) for h in holes]
        if not any(has):
            canvases = [_Canvas(f, None) for f in frames]
            for t in range(n_early):
                yield t, canvases[t].image()
            return canvases
        cfg = self.cfg
        full_h, full_w = holes[0].shape
        s = fl.working_scale(full_h, full_w, cfg.flow_max_side_px)
        size = (max(8, round(full_w * s)), max(8, round(full_h * s)))
        geo = _Geometry(full_w, full_h, size[0], size[1])
        need = [has[t] or has[t + 1] for t in range(n - 1)]  # pairs whose flow is needed
        used = [has[t] or (t > 0 and need[t - 1]) or (t < n - 1 and need[t]) for t in range(n)]

        data: list[_FrameData | None] = [None] * n
        for t in range(n):
            if not used[t]:
                continue
            d = cache_f.get(start + t)
            if d is None:
                d = self._frame_data(frames[t], holes[t], size)
                cache_f[start + t] = d
            data[t] = d

        fwd, bwd = self._flows(data, need, start, cache_p)
        tick("flows", 1.0)
        thr = cfg.consistency_px * geo.sx  # in working-size pixels

        # Pixel lists: the hole, plus a thin ring around it for the seam correction.
        pix: list[tuple[NDArray[np.intp], NDArray[np.intp], int] | None] = [None] * n
        for t in range(n):
            if has[t]:
                y0, y1, x0, x1 = _bbox(holes[t], 0)
                hy, hx = np.nonzero(holes[t][y0:y1, x0:x1])
                hy, hx = hy + y0, hx + x0
                ry, rx = _ring_around(hy, hx, full_h, full_w)
                pix[t] = (np.concatenate([hy, ry]), np.concatenate([hx, rx]), hy.size)

        n_holes = sum(has)
        pred_past = dict(
            _ticking(
                self._propagate(+1, frames, holes, data, pix, fwd, bwd, geo, thr),
                partial(tick, "forward", 1.0 / n_holes),
            )
        )
        filled = [_Canvas(frames[t], holes[t] if has[t] else None) for t in range(n)]
        missing: list[NDArray[np.bool_] | None] = [None] * n
        # Per hole pixel, for smoothing: how much of its change it takes, and the share of the
        # change's fine detail.
        hold: list[NDArray[np.float32] | None] = [None] * n
        detail: list[NDArray[np.float32] | None] = [None] * n
        own_smooth: list[_OwnSmooth | None] = [None] * n
        # The pass from the future runs backwards; each frame is finished as soon as it has both
        # directions, so the window holds one direction's colours, not two. Finishing a frame
        # needs that frame alone, so it runs on the engine's worker threads while the pass goes
        # on to the next one.

        def finish(t: int, pred_future: _Pred) -> None:
            pix_t = pix[t]
            assert pix_t is not None  # set above for every frame with a hole
            ys, xs, nh = pix_t
            col, ok = _blend(pred_past.pop(t), pred_future)
            self._emit_stage("propagated", buf[t][0].index, frames[t], ys, xs, nh, col, ok)
            mismatch = _ring_mismatch(frames[t], ys, xs, nh, col, ok)
            col = _seam_correct(frames[t], ys, xs, nh, col, ok)
            self._emit_stage("seam", buf[t][0].index, frames[t], ys, xs, nh, col, ok)
            good = ok[:nh]
            own = _OwnSmooth(frames[t], holes[t])
            # Confidence of each propagated pixel (invented ones get theirs from no frame).
            weight = None
            if mismatch is not None and cfg.mismatch_scale > 0:
                weight = _propagated_weight(mismatch, cfg.mismatch_scale)
                col = _yield_to_smooth(own, ys, xs, nh, col, ok, weight, cfg.fallback_detail)
                hold[t] = _edge_hold(holes[t], ys[:nh], xs[:nh], good, weight)
                detail[t] = _detail_share(good, weight, cfg.smoothing_detail)
            self._emit_stage("confidence", buf[t][0].index, frames[t], ys, xs, nh, col, ok)
            if self.record_qc:
                conf = np.zeros(nh, np.float32)  # invented pixels: no frame vouches for them
                conf[good] = 1.0 if weight is None else weight[good]
                self._qc[buf[t][0].index] = QcInfo(ys=ys[:nh], xs=xs[:nh], confidence=conf)
            missing[t] = ~good
            if self.pin_invented_edges and not good.all():
                own.retain(ys[:nh][~good], xs[:nh][~good])  # the invented pixels are among them
                own_smooth[t] = own
            filled[t].put(ys[:nh][good], xs[:nh][good], _to_u8(col[:nh][good]))

        backward = _ticking(
            self._propagate(-1, frames, holes, data, pix, fwd, bwd, geo, thr),
            partial(tick, "backward", 1.0 / n_holes),
        )
        _overlap_threads(finish, backward)
        if self.references or self.scene_plates:
            self._from_references(start, buf, holes, pix, filled, missing)
        # What the image engine is about to invent (the pin's pixels; no copies when it is off).
        invented = (
            [None if m is None else m.copy() for m in missing] if self.pin_invented_edges else []
        )
        self._hallucinate(start, frames, holes, pix, filled, missing, fwd, bwd, geo, thr)
        for t, inv in enumerate(invented):
            own_t = own_smooth[t]
            if inv is not None and inv.any() and own_t is not None:
                ys, xs, nh = pix[t]  # type: ignore[misc]
                _pin_invented_edge(own_t, holes[t], ys[:nh], xs[:nh], inv, filled[t])
        tick("invent", 1.0)
        if self.stage_hook is not None:
            for t in range(n):
                if has[t]:
                    self.stage_hook("hallucinated", buf[t][0].index, filled[t].image(), holes[t])
        if cfg.smoothing_strength > 0 and cfg.smoothing_radius > 0:
            with self._filled_flows(filled, data, fwd, bwd, geo):
                smoothed = self._smooth(filled, pix, fwd, bwd, geo, thr, hold, detail, n_early)
                for t, image in smoothed:
                    if self.stage_hook is not None and has[t]:
                        self.stage_hook("smoothed", buf[t][0].index, image, holes[t])
                    yield t, image
            handed_out = n_early
        else:
            handed_out = 0
        tick("smooth", 1.0)
        if self.stage_hook is not None:
            for t in range(handed_out, n):
                if has[t]:
                    self.stage_hook("smoothed", buf[t][0].index, filled[t].image(), holes[t])
        for t in range(handed_out, n_early):  # not smoothed: the fills as they are
            yield t, filled[t].image()
        return filled

    def _emit_stage(
        self,
        stage: str,
        index: int,
        frame: NDArray[np.uint8],
        ys: NDArray[np.intp],
        xs: NDArray[np.intp],
        nh: int,
        col: NDArray[np.float32],
        ok: NDArray[np.bool_],
    ) -> None:
        """Show ``stage_hook`` the propagated colours so far (only where propagation found any)."""
        if self.stage_hook is None:
            return
        good = ok[:nh]
        img = frame.copy()
        img[ys[:nh][good], xs[:nh][good]] = _to_u8(col[:nh][good])
        valid = np.zeros(frame.shape[:2], bool)
        valid[ys[:nh][good], xs[:nh][good]] = True
        self.stage_hook(stage, index, img, valid)

    def _frame_data(
        self, rgb: NDArray[np.uint8], hole: NDArray[np.bool_], size: tuple[int, int]
    ) -> _FrameData:
        gray = fl.resize(fl.to_gray(rgb), size)
        return _FrameData(gray=gray, region=fl.dilate(fl.shrink_mask(hole, size), 1))

    def _flows(
        self,
        data: list[_FrameData | None],
        need: list[bool],
        start: int,
        cache_p: dict[int, tuple[NDArray[np.float32], NDArray[np.float32]]],
    ) -> tuple[list[NDArray[np.float32] | None], list[NDArray[np.float32] | None]]:
        """Completed flows: ``fwd[t]`` frame t -> t+1 (in t's grid), ``bwd[t]`` t+1 -> t."""
        n = len(data)
        fwd: list[NDArray[np.float32] | None] = [None] * (n - 1)
        bwd: list[NDArray[np.float32] | None] = [None] * (n - 1)
        fill: Callable[[NDArray[np.float32], NDArray[np.bool_]], NDArray[np.float32]] = (
            partial(homography_fill, paired=True)
            if self.cfg.flow_fill == "homography"
            else harmonic_fill
        )
        todo: list[int] = []
        for t in range(n - 1):
            if not need[t]:
                continue
            hit = cache_p.get(start + t)
            if hit is not None:
                fwd[t], bwd[t] = hit
            else:
                todo.append(t)

        def pair(t: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
            a, b = data[t], data[t + 1]
            assert a is not None and b is not None
            both = a.region | b.region  # not empty: the pair's flow is needed
            h, w = a.gray.shape
            grown, box = self._pair_box(a, b)
            y0, y1, x0, x1 = box
            # DIS runs on the box around the grown holes plus a margin, and the field is extended
            # beyond it by edge replication (flow is only read near the holes). Both frames get
            # the union of their holes filled smoothly from its border, so DIS sees the same
            # textureless patch at the same place in both: nothing there moves with the object
            # (one frame's hole alone in each frame would move with it, and its coarse pyramid
            # levels and patches would carry that motion well beyond the hole).
            u = both[y0:y1, x0:x1]
            ga, gb = _smooth_fill(a.gray[y0:y1, x0:x1], u), _smooth_fill(b.gray[y0:y1, x0:x1], u)
            ab, ba = self._dis_both(ga, gb, _coarse_start(self._flow, a.gray, b.gray, both, box))
            # That still patch can hold DIS back in a fast pan: tracked corners correct it.
            ab, ba = _with_tracked_motion(
                self._flow, (a.gray, b.gray), (ga, gb), (ab, ba), grown, box
            )
            raw = np.concatenate(
                [fl.extend_crop(ab, y0, x0, h, w), fl.extend_crop(ba, y0, x0, h, w)], axis=2
            )
            # Both fields are completed over the same grown union (one solve; each field gets
            # its own camera motion), so a pair's flows depend on that pair alone.
            done = fill(raw, grown)
            return np.ascontiguousarray(done[..., :2]), np.ascontiguousarray(done[..., 2:])

        # Each pair's flows depend on that pair alone, and DIS, the remaps and the sparse solve
        # release the GIL: the pairs run on the engine's worker threads (same results in any
        # order; 854x480 clip on 2 cores: the engine alone 8-10 % faster, `remove` 6-7 %).
        for t, (ab, ba) in zip(todo, _map_threads(pair, todo), strict=True):
            fwd[t], bwd[t] = ab, ba
            cache_p[start + t] = (ab, ba)
        return fwd, bwd

    def _pair_box(
        self, a: _FrameData, b: _FrameData
    ) -> tuple[NDArray[np.bool_], tuple[int, int, int, int]]:
        """A frame pair's holes, united and grown by ``flow_grow_px`` (where the flow completion
        writes), and the box DIS runs on: theirs plus ``_FLOW_MARGIN_PX``."""
        grown = fl.dilate(a.region | b.region, self.cfg.flow_grow_px)
        return grown, _bbox(grown, _FLOW_MARGIN_PX)

    def _dis_both(
        self,
        ga: NDArray[np.uint8],
        gb: NDArray[np.uint8],
        start: _FlowPair | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """DIS flows ``ga -> gb`` and ``gb -> ga`` of two grey crops (from ``start``'s two
        fields, if given, instead of zero)."""
        ini_ab, ini_ba = (None, None) if start is None else start
        return (
            fl.estimate_gray(self._flow, ga, gb, ini_ab),
            fl.estimate_gray(self._flow, gb, ga, ini_ba),
        )

    # ------------------------------------------------------------------ propagation

    def _propagate(
        self,
        direction: int,
        frames: list[NDArray[np.uint8]],
        holes: list[NDArray[np.bool_]],
        data: list[_FrameData | None],
        pix: list[tuple[NDArray[np.intp], NDArray[np.intp], int] | None],
        fwd: list[NDArray[np.float32] | None],
        bwd: list[NDArray[np.float32] | None],
        geo: _Geometry,
        thr: float,
    ) -> Iterator[tuple[int, _Pred]]:
        """One recurrent pass; ``direction`` +1 takes sources from the past, -1 from the future.

        Yields ``(t, colours)`` for every frame with a hole, in the pass's order.

        A frame's address map covers the bounding box of its chained region (plus a margin; cells
        outside are visible and address themselves): (bh, bw, 5) float32 holding the source frame
        (window index, -1 = none), source x and y (working-size pixels), distance in frames and
        accumulated forward-backward error.
        """
        n = len(frames)
        w, h = geo.w, geo.h
        max_dist = self.cfg.max_propagation_frames
        order = range(n) if direction > 0 else range(n - 1, -1, -1)
        prev: _Map | None = None  # None: the previous frame is all visible
        regions = [None if d is None else d.region for d in data]
        for t in order:
            p = pix[t]
            if p is None:
                prev = None
                continue
            d = data[t]
            assert d is not None
            cy, cx = np.nonzero(d.region)
            y0, x0 = max(0, int(cy.min()) - 2), max(0, int(cx.min()) - 2)
            y1, x1 = min(h, int(cy.max()) + 3), min(w, int(cx.max()) + 3)
            gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            arr = np.zeros((y1 - y0, x1 - x0, 5), np.float32)
            arr[..., 0] = t
            arr[..., 1] = gx
            arr[..., 2] = gy
            q = t - direction  # the neighbour the chain steps to
            step = _step_flows(direction, t, fwd, bwd) if 0 <= q < n else None
            if step is not None:
                to_q, back = step
                m = to_q[cy, cx]
                qx = cx + m[:, 0]
                qy = cy + m[:, 1]
                r = m + fl.sample_points(back, qx, qy, border_value=1e4)
                err = np.sqrt(r[:, 0] * r[:, 0] + r[:, 1] * r[:, 1])
                addr = _lookup(prev, q, qx, qy, regions)
                addr[:, 3] += 1.0
                addr[:, 4] += err
                bad = (err > thr) | (addr[:, 0] < 0) | (addr[:, 3] > max_dist)
                bad |= (qx < -0.5) | (qx > w - 0.5) | (qy < -0.5) | (qy > h - 0.5)
                addr[bad, 0] = -1.0
                arr[cy - y0, cx - x0] = addr
            else:
                arr[cy - y0, cx - x0, 0] = -1.0
            cur = _Map(t, y0, x0, arr)
            prev = cur
            ys, xs, _ = p
            lx, ly = geo.to_small(xs, ys)
            a = _lookup(cur, t, lx, ly, regions)
            src = np.rint(a[:, 0]).astype(np.int64)
            ok = (a[:, 0] >= 0) & (src != t)
            color = np.zeros((ys.size, 3), np.float32)
            dist = np.full(ys.size, np.inf, np.float32)
            for j, sel in _groups(src, ok):
                fx, fy = geo.to_full(a[sel, 1], a[sel, 2])
                # Never read colour whose bilinear footprint touches a hole. The bicubic read
                # reaches 1 px further with taps of weight <= 0.1; a saturated object moving
                # half a pixel per frame showed no colour leak from it (same fill as a bilinear
                # read next to holes).
                if pix[j] is not None:
                    touch = fl.sample_points(holes[j].view(np.uint8), fx, fy) > 0
                    sel, fx, fy = sel[~touch], fx[~touch], fy[~touch]
                color[sel] = fl.sample_points(frames[j], fx, fy, cubic=True).astype(np.float32)
                dist[sel] = a[sel, 3] + a[sel, 4] / max(thr, 1e-3)
            yield t, _Pred(color=color, dist=dist)

    # ------------------------------------------------------------------ hallucination

    def _from_references(
        self,
        start: int,
        buf: list[Item],
        holes: list[NDArray[np.bool_]],
        pix: list[tuple[NDArray[np.intp], NDArray[np.intp], int] | None],
        filled: list[_Canvas],
        missing: list[NDArray[np.bool_] | None],
    ) -> None:
        """Fill the pixels no frame shows from the nearest clean plate (``references``), or
        else from a plate of the empty scene (``scene_plates``).

        The plate is aligned to each frame by one homography (:func:`lama_video.flow.
        align_homography`: ORB matches refined by sub-pixel tracks, frames any distance apart),
        fitted on the scene outside the frame's hole; on the plate's own frame it is the
        identity. Each such pixel reads the plate where the homography takes it (bicubic),
        shifted by the median colour difference between frame and plate on a ring around the
        hole (the light may differ from the plate's frame). A frame the plate cannot be aligned
        to, or whose ring the aligned plate does not match (``_PLATE_MISFIT``: parallax, a
        moving scene), and pixels it maps outside the plate, are left to the next plate, then to
        the image engine. Each frame is aligned on its own, so the filled pixels depend on that
        frame and the plate alone (exact across windows); on a still camera they are the
        plate's pixels, moved by no more than the fit's noise and shifted by each frame's light.
        """
        keys = sorted(self.references)
        grays: dict[tuple[str, int], NDArray[np.uint8]] = {}
        for t, m in enumerate(missing):
            if not _any_set(m):
                continue
            assert m is not None and pix[t] is not None
            ys, xs, _ = pix[t]  # type: ignore[misc]
            pos = start + t
            candidates: list[tuple[tuple[str, int], NDArray[np.uint8], bool]] = []
            if keys:
                r = min(keys, key=lambda k: (abs(k - pos), k))
                candidates.append((("frame", r), self.references[r], r == pos))
            candidates += [(("scene", i), p, False) for i, p in enumerate(self.scene_plates)]
            frame = buf[t][0].rgb
            frame_gray = fl.to_gray(frame)
            idx = np.flatnonzero(m)
            for key, plate, same in candidates:
                if not same and key not in grays:
                    grays[key] = fl.to_gray(plate)
                plate_gray = None if same else grays[key]
                got = _aligned_plate(
                    plate, plate_gray, frame, frame_gray, holes[t], xs[idx], ys[idx]
                )
                if got is None:
                    log.debug("clean plate %s %d does not fit frame %d", *key, pos)
                    continue
                inside, values = got
                used = idx[inside]
                filled[t].put(ys[used], xs[used], values)
                left = m.copy()
                left[used] = False
                missing[t] = left
                qc = self._qc.get(buf[t][0].index) if self.record_qc else None
                if qc is not None:
                    qc.confidence[used] = 1.0  # copied from footage (the plate), not invented
                break

    def _hallucinate(
        self,
        start: int,
        frames: list[NDArray[np.uint8]],
        holes: list[NDArray[np.bool_]],
        pix: list[tuple[NDArray[np.intp], NDArray[np.intp], int] | None],
        filled: list[_Canvas],
        missing: list[NDArray[np.bool_] | None],
        fwd: list[NDArray[np.float32] | None],
        bwd: list[NDArray[np.float32] | None],
        geo: _Geometry,
        thr: float,
    ) -> None:
        """Fill the pixels no frame shows: image engine on keyframes, pulled along the flow."""
        n = len(frames)
        todo = [t for t in range(n) if _any_set(missing[t])]
        if not todo:
            return
        interval = self.cfg.keyframe_interval
        keys = [t for t in range(n) if pix[t] is not None and (start + t) % interval == 0]
        if not keys:
            keys = [todo[len(todo) // 2]]
        # 1. The image engine on the first keyframe with missing pixels. Each later keyframe
        #    takes that invention pulled along the flow where it still fits the frame around it
        #    (a still shot, a steady pan); the others are invented, in one batched call.
        #    Keyframes invented each on their own gave every interval its own texture, which the
        #    frames between blend: on a still shot the fill morphed from one to the next.
        batch = [k for k in keys if _any_set(missing[k])]
        if batch and self.chain_inventions:
            self._invent(batch[:1], pix, filled, missing, geo)
            for k in batch[1:]:
                self._pull(k, batch[:1], pix, filled, missing, fwd, bwd, geo, thr, _KEY_RING_FITS)
            self._invent([k for k in batch[1:] if _any_set(missing[k])], pix, filled, missing, geo)
        elif batch:
            self._invent(batch, pix, filled, missing, geo)
        # 2. Other frames pull the keyframe fill along the completed flow from both sides.
        rest: list[int] = []
        for t in todo:
            if t in keys:
                continue
            before = [k for k in keys if k < t]
            after = [k for k in keys if k > t]
            sources = ([before[-1]] if before else []) + ([after[0]] if after else [])
            if self._pull(t, sources, pix, filled, missing, fwd, bwd, geo, thr):
                rest.append(t)
        # 3. Anything still missing: the image engine, frame by frame (one batched call on crops of
        #    one common size around the leftovers, so the cost follows their extent).
        if rest:
            boxes = []
            for t in rest:
                ys, xs, nh = pix[t]  # type: ignore[misc]
                sel = missing[t]
                boxes.append((ys[:nh][sel], xs[:nh][sel]))
            m = _CROP_MARGIN_PX
            ch = min(geo.full_h, max(int(y.max() - y.min()) + 1 for y, _ in boxes) + 2 * m)
            cw = min(geo.full_w, max(int(x.max() - x.min()) + 1 for _, x in boxes) + 2 * m)
            crops = np.zeros((len(rest), ch, cw, 3), np.uint8)
            masks = np.zeros((len(rest), ch, cw), bool)
            origins = []
            for i, (t, (y, x)) in enumerate(zip(rest, boxes, strict=True)):
                y0 = int(np.clip((int(y.min()) + int(y.max()) + 1 - ch) // 2, 0, geo.full_h - ch))
                x0 = int(np.clip((int(x.min()) + int(x.max()) + 1 - cw) // 2, 0, geo.full_w - cw))
                crops[i] = filled[t].window(y0, y0 + ch, x0, x0 + cw)
                masks[i, y - y0, x - x0] = True
                origins.append((y0, x0, y, x))
            out = self.image_engine.inpaint(crops, masks)
            for i, t in enumerate(rest):
                y0, x0, y, x = origins[i]
                filled[t].put(y, x, out[i, y - y0, x - x0])

    def _invent(
        self,
        batch: list[int],
        pix: list[tuple[NDArray[np.intp], NDArray[np.intp], int] | None],
        filled: list[_Canvas],
        missing: list[NDArray[np.bool_] | None],
        geo: _Geometry,
    ) -> None:
        """One batched image-engine call on the missing pixels of the frames ``batch``."""
        if not batch:
            return
        masks = np.zeros((len(batch), geo.full_h, geo.full_w), bool)
        for i, k in enumerate(batch):
            ys, xs, nh = pix[k]  # type: ignore[misc]
            sel = missing[k]
            masks[i, ys[:nh][sel], xs[:nh][sel]] = True
        out = self.image_engine.inpaint(np.stack([filled[k].image() for k in batch]), masks)
        for i, k in enumerate(batch):
            my, mx = np.nonzero(masks[i])
            filled[k].put(my, mx, out[i][my, mx])
            missing[k] = np.zeros_like(missing[k])

    def _pull(
        self,
        t: int,
        sources: list[int],
        pix: list[tuple[NDArray[np.intp], NDArray[np.intp], int] | None],
        filled: list[_Canvas],
        missing: list[NDArray[np.bool_] | None],
        fwd: list[NDArray[np.float32] | None],
        bwd: list[NDArray[np.float32] | None],
        geo: _Geometry,
        thr: float,
        fits: float | None = None,
    ) -> bool:
        """Frame ``t``'s missing pixels from the fills of the frames ``sources`` (keyframes),
        carried along the completed flow (nearer sources weigh more) and put in this frame's
        light (:func:`_stale_shift`). With ``fits``, nothing is put unless the pull meets the
        frame around them (see there). Returns whether some pixels are still missing."""
        ys, xs, _ = pix[t]  # type: ignore[misc]
        missing_t = missing[t]
        assert missing_t is not None  # t has missing pixels
        idx = np.nonzero(missing_t)[0]
        # The invented pixels, then a thin ring around them of pixels this frame knows
        # (outside the hole, or copied from other frames), pulled alike for the seam below.
        iy, ix = ys[idx], xs[idx]
        ry, rx = _ring_around(iy, ix, geo.full_h, geo.full_w)
        qy, qx = np.concatenate([iy, ry]), np.concatenate([ix, rx])
        px, py = geo.to_small(qx.astype(np.float32), qy.astype(np.float32))
        acc = np.zeros((qy.size, 3), np.float32)
        wsum = np.zeros(qy.size, np.float32)
        for k in sources:
            cx, cy, ok = _track(px, py, t, k, fwd, bwd, _TRACK_SLACK * thr, geo)
            fx, fy = geo.to_full(cx[ok], cy[ok])
            wgt = 1.0 / abs(k - t)
            acc[ok] += wgt * filled[k].sample(fx, fy).astype(np.float32)
            wsum[ok] += wgt
        col = (acc / np.maximum(wsum, 1e-12)[:, None]).astype(np.float32)
        if fits is not None:
            # Taken only where the ring around the pulled pixels, pulled alike, meets this
            # frame's own ring within ``fits`` levels (RMS): a still shot's invention does, one
            # carried over many frames along a guessed flow lands beside other content.
            on = np.flatnonzero(wsum[idx.size :] > 0) + idx.size
            err = filled[t].get(qy[on], qx[on]).astype(np.float32) - col[on]
            if on.size < 8 or float(np.sqrt((err * err).mean())) > fits:
                return True
        col[: idx.size] += _stale_shift(filled[t], qy, qx, col, wsum > 0, idx.size)
        got = wsum[: idx.size] > 0
        filled[t].put(iy[got], ix[got], _to_u8(col[: idx.size][got]))
        left = np.zeros_like(missing_t)
        left[idx[~got]] = True
        missing[t] = left
        return bool(left.any())

    # ------------------------------------------------------------------ smoothing

    @contextmanager
    def _filled_flows(
        self,
        filled: list[_Canvas],
        data: list[_FrameData | None],
        fwd: list[NDArray[np.float32] | None],
        bwd: list[NDArray[np.float32] | None],
        geo: _Geometry,
    ) -> Iterator[None]:
        """While smoothing runs, the flows inside the holes are the filled frames' own.

        Inside a hole the completed flow is a guess (the camera motion fitted around it), off by
        2.7-4.1 px at 854x480 on the worst pairs against DIS on the clean frames, and smoothing
        along it averages misplaced content: a blur that does not stop the flicker. Once the
        window is filled, the fills hold the scene's content (copied from the frames that saw it)
        and DIS on two filled frames sees that content move. So for each frame pair, inside the
        grown union of its holes (where the completion wrote), its two flows are replaced by DIS
        on the filled frames (working size, the holes' box plus the usual margin) while smoothing
        runs, and restored afterwards: the next window's propagation reads the overlap pairs'
        completed flows from the cache. Off with ``smoothing_flow: completed``. DIS on the
        filled boxes starts from the completed flows (from zero, a fast pan is beyond its reach
        on a box; see :func:`_coarse_start`).
        """
        n = len(filled)
        todo = [t for t in range(n - 1) if fwd[t] is not None and bwd[t] is not None]
        if self.cfg.smoothing_flow != "filled" or not todo:
            yield
            return
        size = (geo.w, geo.h)
        grays: dict[int, NDArray[np.uint8]] = {}
        for t in sorted({*todo, *(u + 1 for u in todo)}):
            d = data[t]
            assert d is not None  # set for every frame of a needed pair
            # A frame without a hole is its own fill: the gray the flows were computed on.
            grays[t] = (
                d.gray if filled[t].crop is None else fl.resize(fl.to_gray(filled[t].image()), size)
            )

        def pair(t: int) -> tuple[NDArray[np.bool_], tuple[int, int, int, int], _FlowPair]:
            a, b = data[t], data[t + 1]
            assert a is not None and b is not None
            grown, box = self._pair_box(a, b)
            y0, y1, x0, x1 = box
            # DIS starts from the completed flows (the scene's motion, the hole's a guess), not
            # from zero: on a box it would miss a fast pan as in _flows (_coarse_start).
            f_t, b_t = fwd[t], bwd[t]
            assert f_t is not None and b_t is not None
            start = (f_t[y0:y1, x0:x1], b_t[y0:y1, x0:x1])  # estimate_gray copies them
            flows = self._dis_both(grays[t][y0:y1, x0:x1], grays[t + 1][y0:y1, x0:x1], start)
            return grown[y0:y1, x0:x1], box, flows

        saved = []
        try:
            for t, (inside, (y0, y1, x0, x1), (ab, ba)) in zip(
                todo, _map_threads(pair, todo), strict=True
            ):
                f, b = fwd[t], bwd[t]
                assert f is not None and b is not None
                f_box, b_box = f[y0:y1, x0:x1], b[y0:y1, x0:x1]
                # Masked copies of whole boxes (boolean gathers took 3 % of the engine's time).
                where = inside[..., None]
                saved.append((f_box, b_box, where, f_box.copy(), b_box.copy()))
                np.copyto(f_box, ab, where=where)
                np.copyto(b_box, ba, where=where)
            yield
        finally:
            for f_box, b_box, where, f_old, b_old in saved:
                np.copyto(f_box, f_old, where=where)
                np.copyto(b_box, b_old, where=where)

    def _smooth(
        self,
        filled: list[_Canvas],
        pix: list[tuple[NDArray[np.intp], NDArray[np.intp], int] | None],
        fwd: list[NDArray[np.float32] | None],
        bwd: list[NDArray[np.float32] | None],
        geo: _Geometry,
        thr: float,
        hold: list[NDArray[np.float32] | None],
        detail: list[NDArray[np.float32] | None],
        n_early: int = 0,
    ) -> Iterator[tuple[int, NDArray[np.uint8]]]:
        """Blend each hole with its flow-aligned neighbours (weights from flow consistency).

        The coarse part of the change is applied in full, its fine detail only by
        ``smoothing_detail`` (:func:`_split_detail`), or per pixel by ``detail[t]`` where given
        (:func:`_detail_share`); the change is scaled per pixel by ``hold[t]`` where given
        (:func:`_edge_hold`). Every frame is smoothed from its neighbours' fills before
        smoothing. The first ``n_early`` frames are handed out as ``(t, smoothed frame)``, in
        order, each as soon as its smoothing is done (their fills are left as they are); the
        others' results are written into ``filled`` once all are computed.
        """
        n = len(filled)
        radius = self.cfg.smoothing_radius
        strength = self.cfg.smoothing_strength

        def one(t: int) -> tuple[int, NDArray[np.intp], NDArray[np.intp], NDArray[np.uint8]]:
            pix_t = pix[t]
            assert pix_t is not None
            ys, xs, nh = pix_t
            ys, xs = ys[:nh], xs[:nh]
            own = filled[t].get(ys, xs).astype(np.float32)
            acc = own.copy()
            wsum = np.ones(nh, np.float32)
            px, py = geo.to_small(xs.astype(np.float32), ys.astype(np.float32))
            for direction in (+1, -1):
                cx, cy = px.copy(), py.copy()
                err = np.zeros(nh, np.float32)
                alive = np.ones(nh, bool)
                for step in range(1, radius + 1):
                    a, b = t + direction * (step - 1), t + direction * step
                    if not 0 <= b < n:
                        break
                    flows = _step_flows(-direction, a, fwd, bwd)
                    if flows is None:
                        break
                    cx, cy, e = _advance(cx, cy, flows[0], flows[1])
                    err += e
                    alive &= (err <= _SMOOTH_SLACK * thr * step) & geo.inside_small(cx, cy)
                    if not alive.any():
                        break
                    fx, fy = geo.to_full(cx, cy)
                    col = filled[b].sample(fx, fy).astype(np.float32)
                    wgt = alive * np.exp(-((err / max(_SMOOTH_SLACK * thr, 1e-3)) ** 2)) / step
                    acc += wgt[:, None] * col
                    wsum += wgt
            share = detail[t]
            change = _split_detail(
                acc / wsum[:, None] - own,
                ys,
                xs,
                self.cfg.smoothing_detail if share is None else share,
            )
            hold_t = hold[t]
            if hold_t is not None:
                change *= hold_t[:, None]
            return t, ys, xs, _to_u8(own + strength * change)

        # Each frame reads its neighbours' fills and writes nothing until all are done, so the
        # frames run on the engine's worker threads (same result in any order).
        done = _imap_threads(one, [t for t in range(n) if pix[t] is not None])
        late = []
        try:
            for t in range(n):
                if pix[t] is None:  # nothing to smooth: the frame as it is
                    if t < n_early:
                        yield t, filled[t].image()
                    continue
                t_done, ys, xs, values = next(done)
                assert t_done == t
                if t < n_early:
                    image = filled[t].image()  # a new array (the frame has a hole)
                    image[ys, xs] = values
                    yield t, image
                else:
                    late.append((t, ys, xs, values))
        finally:
            done.close()
        for t, ys, xs, values in late:
            filled[t].put(ys, xs, values)


# ---------------------------------------------------------------------- helpers


class _Geometry:
    """Full-size <-> working-size coordinates (pixel centres aligned, as cv2.resize does)."""

    def __init__(self, full_w: int, full_h: int, w: int, h: int) -> None:
        self.full_w, self.full_h, self.w, self.h = full_w, full_h, w, h
        self.sx = w / full_w
        self.sy = h / full_h

    def to_small(self, xs: NDArray, ys: NDArray) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        return ((xs + 0.5) * self.sx - 0.5).astype(np.float32), ((ys + 0.5) * self.sy - 0.5).astype(
            np.float32
        )

    def to_full(self, xs: NDArray, ys: NDArray) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        return ((xs + 0.5) / self.sx - 0.5).astype(np.float32), ((ys + 0.5) / self.sy - 0.5).astype(
            np.float32
        )

    def inside_small(self, xs: NDArray, ys: NDArray) -> NDArray[np.bool_]:
        return (xs >= -0.5) & (xs <= self.w - 0.5) & (ys >= -0.5) & (ys <= self.h - 0.5)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_T = TypeVar("_T")
_P = TypeVar("_P")
_R = TypeVar("_R")


def _pool() -> ThreadPoolExecutor:
    """The engine's worker threads (created on first use, shared by every engine of the
    process)."""
    global _POOL
    with _POOL_LOCK:  # engines may run on several threads (the UI's jobs)
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=_FLOW_THREADS, thread_name_prefix="lama-video")
        return _POOL


def _map_threads(fn: Callable[[_T], _R], items: list[_T]) -> list[_R]:
    """``[fn(x) for x in items]`` on the engine's worker threads (:func:`_pool`). An exception
    (Ctrl-C included) cancels what has not started, so an interrupted run does not wait for the
    rest of the window's work (:func:`_imap_threads`)."""
    return list(_imap_threads(fn, items))


def _returned(gen: Generator[object, None, _R]) -> _R:
    """The value a generator returns, once it has nothing more to hand out."""
    try:
        next(gen)
    except StopIteration as done:
        return cast(_R, done.value)
    raise AssertionError("the generator handed out more than asked")


def _imap_threads(fn: Callable[[_T], _R], items: list[_T]) -> Generator[_R, None, None]:
    """``fn(x) for x in items`` on the engine's worker threads (:func:`_pool`), in order, each
    result as soon as it and those before it are done. Closed early (or on an exception, Ctrl-C
    included), it cancels what has not started and waits for what has."""
    if len(items) < 2 or _FLOW_THREADS < 2:
        yield from (fn(x) for x in items)
        return
    pool = _pool()
    futures = [pool.submit(fn, x) for x in items]
    try:
        for f in futures:
            yield f.result()
    finally:
        for f in futures:
            f.cancel()
        wait(futures)


class _Progress:
    """Whole frames' worth of work done, for :meth:`TemporalEngine.process`'s ``progress``.

    A window of 60 frames takes seconds before its first frame is out, and a bar that counts
    yielded frames only sits still through it and then guesses minutes for a run of seconds. So
    each stage of a window (``_STAGE_SHARES``) reports its share of the frames the window yields
    as it runs, each yielded frame the rest; whole frames are passed on as the sum crosses them,
    and by the end of each window's frames the count equals the frames yielded (never more).
    """

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self._callback = callback
        self._credit = 0.0  # frames' worth of work done (fractional)
        self._told = 0  # whole frames passed to the callback
        self._base = 0  # frames yielded before the current window
        self._n_out = 0  # frames the current window yields
        self._yielded = 0  # of those, yielded so far
        self._stages_over = False  # the window's stages are counted in full (stages_done)

    def window(self, n_out: int) -> Callable[[str, float], None]:
        """Start a window that will yield ``n_out`` frames; returns its stages' callback."""
        self._base += self._yielded
        self._credit = float(self._base)
        self._n_out, self._yielded = n_out, 0
        self._stages_over = False
        return self._stage

    def _stage(self, name: str, fraction: float) -> None:
        if not self._stages_over:
            self._add(self._n_out * _STAGE_SHARES[name] * fraction)

    def stages_done(self) -> None:
        """The window's work is done, or as good as done: its first frame is out (stages it
        skipped, or that go on while its frames are handed out, count as done)."""
        self._credit = max(self._credit, self._base + self._n_out * _WORK_SHARE)
        self._stages_over = True
        self._add(0.0)

    def yielded(self) -> None:
        """One more of the window's frames is out."""
        self._yielded += 1
        if self._yielded == self._n_out:  # exact, whatever the rounding of the shares
            self._credit = float(self._base + self._n_out)
        self._add(1.0 - _WORK_SHARE)

    def _add(self, frames: float) -> None:
        self._credit = min(self._credit + frames, float(self._base + self._n_out))
        whole = int(self._credit + 1e-6) - self._told
        if whole > 0:
            self._told += whole
            if self._callback is not None:
                self._callback(whole)


def _no_stage(name: str, fraction: float) -> None:
    """A window's stage callback that does nothing."""


def _ticking(items: Iterator[_T], tick: Callable[[], None]) -> Iterator[_T]:
    """``items``, calling ``tick()`` after each one is taken."""
    for item in items:
        yield item
        tick()


def _overlap_threads(fn: Callable[[int, _P], None], items: Iterator[tuple[int, _P]]) -> None:
    """``fn(*item)`` for each item on the engine's worker threads while ``items`` (a generator
    run on this thread) produces the next; returns once all are done. At most
    ``_OVERLAP_AHEAD`` items wait for a thread, so what they hold stays bounded. An exception
    (Ctrl-C included) cancels what has not started and is raised here."""
    if _FLOW_THREADS < 2:
        for item in items:
            fn(*item)
        return
    pool = _pool()
    futures: deque[Future[None]] = deque()
    try:
        for item in items:
            futures.append(pool.submit(fn, *item))
            while len(futures) > _OVERLAP_AHEAD:
                futures.popleft().result()
        while futures:
            futures.popleft().result()
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def _step_flows(
    direction: int,
    t: int,
    fwd: list[NDArray[np.float32] | None],
    bwd: list[NDArray[np.float32] | None],
) -> tuple[NDArray[np.float32], NDArray[np.float32]] | None:
    """Flows for a step from frame t towards t - direction: (t -> q in t's grid, q -> t in q's)."""
    if direction > 0:  # step to t - 1
        if t - 1 < 0 or bwd[t - 1] is None:
            return None
        return bwd[t - 1], fwd[t - 1]  # type: ignore[return-value]
    if t >= len(fwd) or fwd[t] is None:  # step to t + 1
        return None
    return fwd[t], bwd[t]  # type: ignore[return-value]


def _advance(
    xs: NDArray[np.float32],
    ys: NDArray[np.float32],
    to_q: NDArray[np.float32],
    back: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Move scattered points one frame along ``to_q``; also their forward-backward error."""
    m = fl.sample_points(to_q, xs, ys)
    nx, ny = xs + m[:, 0], ys + m[:, 1]
    r = m + fl.sample_points(back, nx, ny, border_value=1e4)
    return nx, ny, np.sqrt(r[:, 0] * r[:, 0] + r[:, 1] * r[:, 1])


def _track(
    xs: NDArray[np.float32],
    ys: NDArray[np.float32],
    t: int,
    k: int,
    fwd: list[NDArray[np.float32] | None],
    bwd: list[NDArray[np.float32] | None],
    thr: float,
    geo: _Geometry,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """Follow points of frame t to frame k (working-size coordinates) along the completed flow."""
    direction = 1 if k < t else -1  # step towards t - direction
    ok = np.ones(xs.size, bool)
    cx, cy = xs.copy(), ys.copy()
    a = t
    while a != k:
        flows = _step_flows(direction, a, fwd, bwd)
        if flows is None:
            ok[:] = False
            break
        cx, cy, e = _advance(cx, cy, flows[0], flows[1])
        ok &= (e <= thr) & geo.inside_small(cx, cy)
        a -= direction
    return cx, cy, ok


@dataclass
class _Map:
    """Address map of frame ``t`` over a box at (y0, x0); see ``TemporalEngine._propagate``."""

    t: int
    y0: int
    x0: int
    arr: NDArray[np.float32]
    #: :func:`_mixed_cells` of ``arr``, computed on its first lookup (each map is looked up twice:
    #: for its own frame, then for the next frame of the pass).
    mixed: NDArray[np.bool_] | None = None


def _lookup(
    m: _Map | None,
    t: int,
    xs: NDArray[np.float32],
    ys: NDArray[np.float32],
    regions: list[NDArray[np.bool_] | None],
) -> NDArray[np.float32]:
    """Addresses of points of frame ``t`` (working-size coordinates) from its map."""
    out = _identity(t, xs, ys)
    if m is None:
        return out
    bh, bw = m.arr.shape[:2]
    lx, ly = xs - m.x0, ys - m.y0
    inside = np.nonzero((lx >= -0.5) & (lx <= bw - 0.5) & (ly >= -0.5) & (ly <= bh - 0.5))[0]
    if inside.size:
        if m.mixed is None:
            m.mixed = _mixed_cells(m.arr)
        out[inside] = _sample_map(m.arr, lx[inside], ly[inside], regions, m.mixed)
    return out


def _identity(q: int, xs: NDArray[np.float32], ys: NDArray[np.float32]) -> NDArray[np.float32]:
    """Addresses of points of an all-visible frame q: themselves."""
    out = np.zeros((xs.size, 5), np.float32)
    out[:, 0] = q
    out[:, 1] = xs
    out[:, 2] = ys
    return out


def _sample_map(
    addr_map: NDArray[np.float32],
    xs: NDArray[np.float32],
    ys: NDArray[np.float32],
    regions: list[NDArray[np.bool_] | None],
    mixed: NDArray[np.bool_],
) -> NDArray[np.float32]:
    """Bilinear lookup of an address map, nearest where the four neighbours' sources differ.

    A nearest lookup returns the neighbour cell's address shifted by the point's offset from that
    cell, so sub-pixel positions survive seams between sources. Points off the map get source -1.
    ``mixed``: :func:`_mixed_cells` of ``addr_map`` (kept with the map: each is looked up twice).
    """
    h, w = addr_map.shape[:2]
    out = fl.sample_points(addr_map, xs, ys, border_value=-1.0)
    # Only points whose bilinear footprint holds two sources can differ from their nearest cell.
    fx = np.clip(np.floor(xs).astype(np.int64) + 1, 0, w + 1)
    fy = np.clip(np.floor(ys).astype(np.int64) + 1, 0, h + 1)
    cand = np.nonzero(mixed[np.minimum(fy, h), np.minimum(fx, w)])[0]
    if cand.size == 0:
        return out
    ix = np.floor(xs[cand] + 0.5).astype(np.int64)
    iy = np.floor(ys[cand] + 0.5).astype(np.int64)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    near = np.full((cand.size, out.shape[1]), -1.0, np.float32)
    near[inside] = addr_map[iy[inside], ix[inside]]
    sub = np.abs(out[cand, 0] - near[:, 0]) >= 1e-3
    diff = cand[sub]
    near, ix, iy = near[sub], ix[sub], iy[sub]
    if diff.size:
        fix = near
        fix[:, 1] += xs[diff] - ix
        fix[:, 2] += ys[diff] - iy
        # The shift extrapolates the neighbour's address by up to half a cell; repeated over a chain
        # that can drift into the source's hole. Addresses are only valid outside the source's
        # chained region (the hole grown by a cell), so drop those that drifted in.
        src = np.rint(fix[:, 0]).astype(np.int64)
        for j, sel in _groups(src, src >= 0):
            reg = regions[j]
            if reg is None:
                continue
            cx = np.clip(np.floor(fix[sel, 1] + 0.5).astype(np.int64), 0, reg.shape[1] - 1)
            cy = np.clip(np.floor(fix[sel, 2] + 0.5).astype(np.int64), 0, reg.shape[0] - 1)
            fix[sel[reg[cy, cx]], 0] = -1.0
        out[diff] = fix
    return out


def _groups(
    keys: NDArray[np.int64], ok: NDArray[np.bool_]
) -> Iterator[tuple[int, NDArray[np.intp]]]:
    """``(key, indices)`` for each distinct ``keys[ok]`` in ascending order, the indices of its
    ``ok`` entries ascending: ``np.nonzero(ok & (keys == key))[0]``, from one stable sort instead
    of a pass over all entries per key."""
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return
    order = idx[np.argsort(keys[idx], kind="stable")]
    sorted_keys = keys[order]
    cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    for part in np.split(order, cuts):
        yield int(keys[part[0]]), part


_FOOTPRINT = np.ones((2, 2), np.uint8)


def _mixed_cells(addr_map: NDArray[np.float32]) -> NDArray[np.bool_]:
    """(h + 1, w + 1): whether the 2x2 footprint of cells (y - 1..y, x - 1..x) of an (h, w) address
    map holds two sources (off-map cells count as source -1).

    The footprints' least and greatest source by OpenCV's 2x2 erosion and dilation: exact, one
    call each instead of six NumPy passes over the map, and OpenCV releases the GIL while the
    propagation pass (on the main thread) competes with the workers for it.
    """
    h, w = addr_map.shape[:2]
    src_map = np.full((h + 2, w + 2), -1.0, np.float32)
    src_map[1:-1, 1:-1] = addr_map[..., 0]
    # With the anchor at the kernel's top-left cell, output (y, x) covers (y..y+1, x..x+1).
    lo = cv2.erode(src_map, _FOOTPRINT, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    hi = cv2.dilate(src_map, _FOOTPRINT, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)
    mixed: NDArray[np.bool_] = (hi[: h + 1, : w + 1] - lo[: h + 1, : w + 1]) >= 1e-3
    return mixed


class _Cells:
    """A grid of ``cell``-px cells over the box of a frame's pixel list (hole and ring).

    The seam membrane and the ring mismatch are both averages of ring values per cell, spread
    smoothly over the empty cells and read back at hole pixels.
    """

    def __init__(self, ys: NDArray[np.intp], xs: NDArray[np.intp], cell: int) -> None:
        self.cell = cell
        self.y0, self.x0 = int(ys.min()), int(xs.min())
        self.gh = (int(ys.max()) - self.y0) // cell + 1
        self.gw = (int(xs.max()) - self.x0) // cell + 1

    def mean(
        self, ys: NDArray[np.intp], xs: NDArray[np.intp], values: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Mean of ``values`` (per pixel, (n,) or (n, C)) in each cell, and the empty cells."""
        gy, gx = (ys - self.y0) // self.cell, (xs - self.x0) // self.cell
        acc = np.zeros((self.gh, self.gw, *values.shape[1:]), np.float32)
        cnt = np.zeros((self.gh, self.gw), np.float32)
        np.add.at(acc, (gy, gx), values)
        np.add.at(cnt, (gy, gx), 1.0)
        div = np.maximum(cnt, 1.0).reshape(cnt.shape + (1,) * (values.ndim - 1))
        return cast(NDArray[np.float32], acc / div), cnt == 0

    def sample(
        self, grid: NDArray[np.float32], ys: NDArray[np.intp], xs: NDArray[np.intp]
    ) -> NDArray[np.float32]:
        """``grid`` read bilinearly at pixel centres (clamped to the grid)."""
        c = self.cell
        my = np.clip((ys - self.y0 + 0.5) / c - 0.5, 0, self.gh - 1).astype(np.float32)
        mx = np.clip((xs - self.x0 + 0.5) / c - 0.5, 0, self.gw - 1).astype(np.float32)
        return cast(NDArray[np.float32], fl.sample_points(grid, mx, my))


#: DIS on a pair's box is trusted as it is where it moves all but ``_TRACK_OFF_SHARE`` of the
#: box's tracked corners within ``_TRACK_AGREE_PX`` (working px) of where Lucas-Kanade tracked them.
_TRACK_AGREE_PX = 1.0
_TRACK_OFF_SHARE = 0.1
#: The check runs first on this many of the strongest corners (of ``flow._TRACK_CORNERS``); DIS
#: confirmed there is kept without tracking the rest. On `bench/speed.py`'s clip the check's CPU
#: fell from 17 to 7.5 ms a frame pair; `bench/fill_quality.py` moved one pair of 13 at 432x240
#: and one of 9 at 854x480, by -0.003 / -0.007 dB.
_QUICK_CORNERS = 150


def _with_tracked_motion(
    estimator: fl.FlowEstimator,
    grays: tuple[NDArray[np.uint8], NDArray[np.uint8]],
    crops: tuple[NDArray[np.uint8], NDArray[np.uint8]],
    flows: tuple[NDArray[np.float32], NDArray[np.float32]],
    grown: NDArray[np.bool_],
    box: tuple[int, int, int, int],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """A pair's box flows, corrected where DIS missed a large motion.

    The union of the two frames' holes, filled with the same smooth patch at the same place in
    both (see ``_flows``), is a large still feature: in a fast pan (20-30 px a frame at 432x240)
    DIS on the box around it could stop at a fraction of the motion, and the camera motion fitted
    on that ring was wrong by as much (13 px on motocross-jump's whip pan). DIS now starts from
    the shrunk frames' motion (:func:`_coarse_start`), which catches most of those; this check
    stays for the pairs where that start is off too (dropped, with the start: 432x240 flicker
    1.040 -> 1.045). Sparse corners of the box outside the holes, tracked with pyramidal
    Lucas-Kanade, follow such motions; where they fit one homography and DIS disagrees
    with them, DIS runs again from that homography, and each pixel keeps whichever of the two
    flows matches the frames better there (photometric error over 7x7). The strongest
    ``_QUICK_CORNERS`` corners are asked first: where they fit one homography and DIS agrees with
    them, DIS stands without the rest being tracked.

    Args:
        estimator: the DIS preset.
        grays: the two frames' full working-size grays (corners are taken there, in the box).
        crops: the two box crops DIS ran on (holes smooth-filled).
        flows: DIS on them, a -> b and b -> a.
        grown: the pair's grown union of holes (no corners there).
        box: (y0, y1, x0, x1) of the crops.

    Returns:
        The two flows, corrected or as given.
    """
    ab, ba = flows
    y0, y1, x0, x1 = box
    where = np.zeros_like(grown)
    where[y0:y1, x0:x1] = True
    where &= ~grown

    def dis_agrees(
        fit: tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.float32]],
    ) -> bool:
        _, p0, p1 = fit
        dis_says = fl.sample_points(ab, p0[:, 0] - x0, p0[:, 1] - y0)
        off = fl.vector_length(dis_says - (p1 - p0)) > _TRACK_AGREE_PX
        return float(off.mean()) <= _TRACK_OFF_SHARE

    # Most pairs' DIS is right, and the strongest corners alone confirm it: Lucas-Kanade's cost
    # follows the corners. Only where they do not is the full set tracked and fitted.
    quick = fl.track_homography(grays[0], grays[1], where, max_corners=_QUICK_CORNERS)
    if quick is not None and dis_agrees(quick):
        return ab, ba
    fit = fl.track_homography(grays[0], grays[1], where)
    if fit is None or dis_agrees(fit):
        return ab, ba
    hom = fit[0]
    ga, gb = crops
    ab2 = fl.estimate_gray(estimator, ga, gb, fl.homography_field(hom, box))
    inverse = np.linalg.inv(hom).astype(np.float64)
    ba2 = fl.estimate_gray(estimator, gb, ga, fl.homography_field(inverse, box))
    take_ab = fl.photometric_error(ga, gb, ab2) < fl.photometric_error(ga, gb, ab)
    take_ba = fl.photometric_error(gb, ga, ba2) < fl.photometric_error(gb, ga, ba)
    return (
        np.where(take_ab[..., None], ab2, ab).astype(np.float32),
        np.where(take_ba[..., None], ba2, ba).astype(np.float32),
    )


def check_plate(
    plate: NDArray[np.uint8],
    frame: NDArray[np.uint8],
    hole: NDArray[np.bool_] | None,
    position: int,
) -> None:
    """Refuse a clean plate that is not its frame with the object removed (``_PLATE_SAME``).

    Compared by the median difference away from ``hole`` (grown by ``_PLATE_MARGIN_PX``), or,
    while the hole is not known yet, by the lower quartile over the whole frame (a plate whose
    painted area covers up to three quarters of the frame still passes; another frame does not).

    Raises:
        MaskError: the plate differs from the frame by more than ``_PLATE_SAME`` levels there.
    """
    away = np.ones(frame.shape[:2], bool) if hole is None else ~fl.dilate(hole, _PLATE_MARGIN_PX)
    if not away.any():
        return
    diff = np.abs(plate[away].astype(np.int16) - frame[away].astype(np.int16)).mean(axis=1)
    off = float(np.quantile(diff, 0.25 if hole is None else 0.5))
    if off > _PLATE_SAME:
        where = "lower quartile over the frame" if hole is None else "median away from the hole"
        raise MaskError(
            f"the clean plate for frame {position} differs from that frame by {off:.0f} grey "
            f"levels ({where}); expected frame {position} itself with only the object "
            "painted out: check the frame number (0-based) and export the plate from the same "
            "video"
        )


def _aligned_plate(
    plate: NDArray[np.uint8],
    plate_gray: NDArray[np.uint8] | None,
    frame: NDArray[np.uint8],
    frame_gray: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    xs: NDArray[np.intp],
    ys: NDArray[np.intp],
) -> tuple[NDArray[np.bool_], NDArray[np.uint8]] | None:
    """The plate's colours at the frame's pixels ``(xs, ys)``, aligned and in the frame's light.

    Args:
        plate: (h, w, 3) RGB, any size; plate_gray: its grey, or None when the plate is this
            very frame (no alignment).
        frame: (H, W, 3) RGB, frame_gray its grey; hole: (H, W) bool, its hole.

    Returns:
        (which of the pixels the plate shows, their (n, 3) uint8 colours), or None where the
        plate cannot be aligned or does not match the frame around the hole (``_PLATE_MISFIT``).
    """
    grown = fl.dilate(hole, _PLATE_MARGIN_PX)
    if plate_gray is None:
        hom = np.eye(3)
    else:
        found = fl.align_homography(frame_gray, plate_gray, ~grown)
        if found is None:
            return None
        hom = found
    ph, pw = plate.shape[:2]

    def within(at: NDArray[np.float32]) -> NDArray[np.bool_]:
        return (at[:, 0] >= 0) & (at[:, 0] <= pw - 1) & (at[:, 1] >= 0) & (at[:, 1] <= ph - 1)

    at = fl.map_points(hom, xs, ys)
    inside = within(at)
    # The light of this frame: the median difference frame - plate on a ring around the hole.
    ry, rx = np.nonzero(grown & ~fl.dilate(hole, 1))
    rat = fl.map_points(hom, rx, ry)
    ok = within(rat)
    if not inside.any() or not ok.any():
        return None
    seen = fl.sample_points(plate, rat[ok, 0], rat[ok, 1]).astype(np.float32)
    diff = frame[ry[ok], rx[ok]].astype(np.float32) - seen
    shift = np.median(diff, axis=0)
    if float(np.median(np.abs(diff - shift).mean(axis=1))) > _PLATE_MISFIT:
        return None
    values = fl.sample_points(plate, at[inside, 0], at[inside, 1], cubic=True).astype(np.float32)
    return inside, _to_u8(values + shift)


def _blend(a: _Pred, b: _Pred) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Mix the two directions' predictions; nearer (and more consistent) sources weigh more."""
    wa = np.where(np.isfinite(a.dist), 1.0 / np.maximum(a.dist, 1.0) ** 2, 0.0).astype(np.float32)
    wb = np.where(np.isfinite(b.dist), 1.0 / np.maximum(b.dist, 1.0) ** 2, 0.0).astype(np.float32)
    tot = wa + wb
    ok = tot > 0
    col = (wa[:, None] * a.color + wb[:, None] * b.color) / np.maximum(tot, 1e-12)[:, None]
    return col.astype(np.float32), ok


def _ring_around(
    ys: NDArray[np.intp], xs: NDArray[np.intp], height: int, width: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The pixels of a ``height`` x ``width`` frame within ``_SEAM_RING_PX`` of the pixels
    ``(ys, xs)`` (a hole's, or its invented ones; not empty) and not among them, row by row."""
    r = _SEAM_RING_PX
    y0, x0 = max(0, int(ys.min()) - r), max(0, int(xs.min()) - r)
    y1, x1 = min(height, int(ys.max()) + r + 1), min(width, int(xs.max()) + r + 1)
    crop = np.zeros((y1 - y0, x1 - x0), bool)
    crop[ys - y0, xs - x0] = True
    ry, rx = np.nonzero(fl.dilate(crop, r) & ~crop)
    return ry + y0, rx + x0


def _stale_shift(
    canvas: _Canvas,
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    pulled: NDArray[np.float32],
    ok: NDArray[np.bool_],
    n_inv: int,
) -> NDArray[np.float32]:
    """What to add to an invention pulled from a keyframe so that it meets this frame.

    ``(ys, xs)``: the frame's invented pixels (the first ``n_inv``), then the ring of known
    pixels around them; ``pulled``: the keyframe's colours carried to all of them, ``ok`` where
    the pull reached. The ring's difference between the frame (``canvas``) and the pulled colours
    is spread over the invented pixels as a membrane (as the propagated colours' seam, on the
    same cells), and only the part beyond ``_STALE_LEVELS`` is kept: a few levels are the seam the
    pinned edges take care of; more is an invention gone stale, made beside something that has
    moved since (a white dog the keyframe's fill took its colours from), or light that changed.
    """
    on = np.flatnonzero(ok[n_inv:]) + n_inv
    if on.size < 8 or n_inv == 0:
        return np.zeros((n_inv, 3), np.float32)
    err = canvas.get(ys[on], xs[on]).astype(np.float32) - pulled[on]
    shift = _membrane(ys, xs, on, err, np.arange(n_inv))
    size = np.sqrt((shift * shift).mean(axis=1, keepdims=True))
    return shift * (np.maximum(size - _STALE_LEVELS, 0.0) / np.maximum(size, 1e-6))


def _seam_correct(
    frame: NDArray[np.uint8],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    nh: int,
    col: NDArray[np.float32],
    ok: NDArray[np.bool_],
) -> NDArray[np.float32]:
    """Add to the propagated hole colours the membrane that cancels their error on the ring."""
    ring = np.arange(ys.size) >= nh
    known = ring & ok
    if not known.any() or not ok[:nh].any():
        return col
    err = frame[ys[known], xs[known]].astype(np.float32) - col[known]
    out = col.copy()
    hole_ok = np.nonzero(ok[:nh])[0]
    out[hole_ok] += _membrane(ys, xs, known, err, hole_ok)
    return out


def _membrane(
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    known: NDArray[np.bool_] | NDArray[np.intp],
    err: NDArray[np.float32],
    at: NDArray[np.intp],
) -> NDArray[np.float32]:
    """A smooth field through the ring differences ``err`` (one per pixel ``known`` of the
    pixel list ``(ys, xs)``), read at the pixels ``at`` of that list: the differences averaged on
    ``_SEAM_CELL_PX`` cells over the list's box, harmonically interpolated over the empty cells
    (a membrane, as in Poisson blending) and read bilinearly."""
    cells = _Cells(ys, xs, _SEAM_CELL_PX)
    grid_vals, empty = cells.mean(ys[known], xs[known], err)
    return cells.sample(harmonic_fill(grid_vals, empty), ys[at], xs[at])


def _ring_mismatch(
    frame: NDArray[np.uint8],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    nh: int,
    col: NDArray[np.float32],
    ok: NDArray[np.bool_],
) -> NDArray[np.float32] | None:
    """How badly propagation predicts the known ring around the hole, spread over the hole.

    The ring pixels (indices >= ``nh``) are propagated like hole pixels, so where their prediction
    disagrees with the frame, the completed flow (and the copies it makes) is wrong there. A
    uniform colour shift is not a geometric error (the seam membrane removes it), so the median ring
    error is subtracted first. The mean absolute residual (over RGB) of ring pixels is averaged on
    a grid of ``_CONF_CELL_PX`` cells, smoothed, and harmonically interpolated into the hole.

    Returns:
        (nh,) float32 mismatch (grey levels) per hole pixel, or None without a predicted ring.
    """
    known = np.nonzero(ok[nh:])[0] + nh
    if known.size < 8 or not ok[:nh].any():
        return None
    err = frame[ys[known], xs[known]].astype(np.float32) - col[known]
    err -= np.median(err, axis=0)
    res = np.abs(err).mean(axis=1)
    cells = _Cells(ys, xs, _CONF_CELL_PX)
    grid_vals, empty = cells.mean(ys[known], xs[known], res)
    grid_vals = fl.box_blur(harmonic_fill(grid_vals, empty), 1)
    return cells.sample(grid_vals, ys[:nh], xs[:nh])


def _edge_nearness(
    hole: NDArray[np.bool_], ys: NDArray[np.intp], xs: NDArray[np.intp], far_px: float
) -> NDArray[np.float32]:
    """Per hole pixel ``(ys, xs)``: 1 within ``_EDGE_FULL_PX`` of the nearest known pixel, 0 from
    ``far_px`` on, linear in between (exact Euclidean distance)."""
    # The nearest known pixel of a hole pixel touches the hole, so a 1 px margin holds it.
    y0, y1, x0, x1 = _bbox(hole, 1)
    dist = cv2.distanceTransform(
        hole[y0:y1, x0:x1].astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
    )
    d = dist[ys - y0, xs - x0]
    return np.clip((far_px - d) / (far_px - _EDGE_FULL_PX), 0.0, 1.0).astype(np.float32)


class _OwnSmooth:
    """A frame's own smooth fill of its hole, computed once on first use.

    The harmonic interpolation of the frame's colours around the hole, over the hole's box
    grown by 2 px; the finest level is interpolated, not relaxed (a low-frequency estimate, 4x
    cheaper). The confidence fallback (:func:`_yield_to_smooth`) and the pinned invented edges
    (:func:`_pin_invented_edge`) read the same one; between the two, :meth:`retain` keeps only
    the pixels the second may read, so a window does not hold every frame's box. A fill the
    fallback did not need is solved only if the pin reads it (not for a frame whose invented
    pixels all lie deep inside the hole, or turn out to be seen by a reference frame).
    """

    def __init__(self, frame: NDArray[np.uint8], hole: NDArray[np.bool_]) -> None:
        self._frame: NDArray[np.uint8] | None = frame
        self._hole = hole
        self._box: NDArray[np.float32] | None = None
        self._origin = (0, 0)
        self._kept: tuple[NDArray[np.int64], NDArray[np.float32]] | None = None

    def at(self, ys: NDArray[np.intp], xs: NDArray[np.intp]) -> NDArray[np.float32]:
        """(n, 3) float32 smooth fill at hole pixels ``(ys, xs)`` (after :meth:`retain`, only
        pixels it kept)."""
        if self._kept is not None:
            keys, values = self._kept
            asked = ys.astype(np.int64) * self._hole.shape[1] + xs
            where = np.minimum(np.searchsorted(keys, asked), keys.size - 1)
            if not np.array_equal(keys[where], asked):
                raise ValueError("_OwnSmooth.at: a pixel that retain() did not keep")
            return values[where]
        if self._box is None:
            assert self._frame is not None
            y0, y1, x0, x1 = _bbox(self._hole, 2)
            self._box = harmonic_fill(
                self._frame[y0:y1, x0:x1].astype(np.float32),
                self._hole[y0:y1, x0:x1],
                coarse_levels=1,
            )
            self._origin = (y0, x0)
        y0, x0 = self._origin
        return self._box[ys - y0, xs - x0]

    def retain(self, ys: NDArray[np.intp], xs: NDArray[np.intp]) -> None:
        """Once the fill is solved, keep it at these hole pixels only (one not solved yet is left
        so: it is solved if it is ever read, with the frame and hole the window holds anyway)."""
        if self._box is None:
            return
        values = self.at(ys, xs)
        keys = ys.astype(np.int64) * self._hole.shape[1] + xs
        order = np.argsort(keys, kind="stable")
        self._kept = (keys[order], values[order])
        self._box = self._frame = None


def _pin_invented_edge(
    own: _OwnSmooth,
    hole: NDArray[np.bool_],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    invented: NDArray[np.bool_],
    canvas: _Canvas,
) -> None:
    """Give the invented hole pixels ``(ys, xs)[invented]`` near the hole's edge the frame's own
    smooth fill (``own``): in full within ``_EDGE_FULL_PX`` of the known pixels, fading to the
    invention at ``_PIN_FADE_PX``.

    No frame shows these pixels; the image engine invents them on keyframes and the other frames
    pull that invention along the completed flow, a guess that is off by pixels in fast motion.
    A pixel or two from the edge (all of a thin hole: a line, a cable, a limb) the real pixels
    around it pin its value down better than any invention carried from elsewhere: the harmonic
    interpolation of the frame's own ring, as for a mismatching copy
    (:func:`_yield_to_smooth`). Measured on the fill-quality pairs (``bench/fill_quality.py``,
    2026-12-06): 854x480 hole PSNR 22.03 -> 22.10 dB, flicker 1.215 -> 1.204 (worst pair, a
    paraglider's lines, 2.09 -> 2.00, its SSIM from 0.0012 below per-frame Telea's to 0.0004
    above), texture 0.746 -> 0.722; 432x240 22.96 -> 23.01 dB, flicker 1.051 -> 1.047 (worst
    1.673 -> 1.620), texture 0.724 -> 0.712.

    Not where an overlay is un-blended (``TemporalEngine.pin_invented_edges``): the un-blender
    fits the overlay's opacity against the fill over time, and a thin overlay's fill turned
    smooth moved that fit's decisions (``bench/overlays.py`` at 432x240: drift-chicane's 80 %
    timestamp called opaque, 32.19 -> 25.96 dB; semi-transparent mean 36.64 -> 36.10).
    """
    iy, ix = ys[invented], xs[invented]
    near = _edge_nearness(hole, iy, ix, _PIN_FADE_PX)
    if not (near > 0).any():
        return
    invention = canvas.get(iy, ix).astype(np.float32)
    w = near[:, None]
    canvas.put(iy, ix, _to_u8(w * own.at(iy, ix) + (1.0 - w) * invention))


def _yield_to_smooth(
    own: _OwnSmooth,
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    nh: int,
    col: NDArray[np.float32],
    ok: NDArray[np.bool_],
    weight: NDArray[np.float32],
    detail: float = 0.0,
) -> NDArray[np.float32]:
    """Blend propagated hole colours towards the frame's own smooth fill where they mismatch.

    ``weight`` (nh,): the propagated colour's weight per hole pixel (:func:`_propagated_weight`
    of the ring mismatch); the smooth fill ``own`` is the harmonic interpolation of the frame's
    colours around the hole (a per-frame estimate that never misplaces texture). The fill taken
    carries ``detail`` times the propagated colours' fine detail (their difference from their own
    ``_DETAIL_SIGMA_PX`` blur): a copy that mismatches its ring is misplaced by a few pixels,
    more often than it is the wrong texture, and a smooth fill alone is a visible smear.
    Smoothing then averages that doubtful detail over time in full (:func:`_detail_share`), so
    what stays is the detail the neighbouring frames agree on.
    """
    sel = np.nonzero(ok[:nh])[0]
    wgt = weight[sel]
    if float(wgt.min()) > 0.98:
        return col
    fill = own.at(ys[sel], xs[sel])
    if detail > 0:
        fill += np.float32(detail) * (col[sel] - _split_detail(col[sel], ys[sel], xs[sel], 0.0))
    out = col.copy()
    out[sel] = wgt[:, None] * col[sel] + (1.0 - wgt[:, None]) * fill
    return out


def _propagated_weight(mismatch: NDArray[np.float32], scale: float) -> NDArray[np.float32]:
    """Weight of propagated colours against the smooth fill: ``1 / (1 + (mismatch / scale)^2)``."""
    return (1.0 / (1.0 + (mismatch / scale) ** 2)).astype(np.float32)


def _edge_hold(
    hole: NDArray[np.bool_],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    propagated: NDArray[np.bool_],
    weight: NDArray[np.float32],
) -> NDArray[np.float32] | None:
    """How much of smoothing's change each hole pixel ``(ys, xs)`` takes: 1 in general; near the
    hole's edge, a propagated pixel whose flow failed to predict the ring (``weight`` < 1) takes
    ``weight`` (fading back to 1 at ``_EDGE_HOLD_PX`` from the edge). ``None``: 1 everywhere.

    Such a pixel holds the frame's own smooth fill (:func:`_yield_to_smooth`), which its real
    neighbours a pixel or two away pin down; smoothing would average it with the neighbouring
    frames' fills along that same failed flow, i.e. with misplaced content. Measured on the worst
    pair of the 13 (432x240, motocross-jump:paragliding-launch, 29 % of whose hole lies within 1.5
    px of its edge): within 1.5 px, 29.6 dB before smoothing, 20.9 dB after it, 27.3 for
    per-frame Telea.
    """
    doubt = propagated & (weight < 0.999)
    if not doubt.any():
        return None
    near = _edge_nearness(hole, ys[doubt], xs[doubt], _EDGE_HOLD_PX)
    out = np.ones(ys.size, np.float32)
    out[doubt] = 1.0 - (1.0 - weight[doubt]) * near
    return out


#: Doubt (1 - the propagated weight) at which a pixel's fine detail is averaged over time in full.
_DOUBT_FULL = 0.25


def _detail_share(
    propagated: NDArray[np.bool_], weight: NDArray[np.float32], base: float
) -> NDArray[np.float32]:
    """Per hole pixel, the share of smoothing's fine detail it takes (:func:`_split_detail`).

    ``base`` (``smoothing_detail``) for invented and trusted propagated pixels, rising linearly
    with the doubt ``1 - weight`` of a propagated pixel to 1 at ``_DOUBT_FULL``: the detail a
    mismatching copy keeps (:func:`_yield_to_smooth`) is only as good as the neighbouring frames'
    agreement on it. Measured on 13 pairs at 432x240 (with ``fallback_detail`` 0.5): texture ratio
    0.688 -> 0.721, flicker ratio 1.096 -> 1.093, hole PSNR 22.65 -> 22.64 dB; the doubt alone,
    with no detail kept in the fallback: 0.643, 1.046, 22.72 dB.
    """
    doubt = np.where(propagated, 1.0 - weight, 0.0)
    share = base + (1.0 - base) * np.clip(doubt / _DOUBT_FULL, 0.0, 1.0)
    return share.astype(np.float32)


#: Smoothing's change is split at this scale (Gaussian sigma, full-size px): coarser is averaged
#: over time in full, finer by ``smoothing_detail``; the same split is the fine detail a
#: mismatching copy keeps on its smooth fill (:func:`_yield_to_smooth`). 2 px since smoothing
#: follows the fills' own flow (``TemporalEngine._filled_flows``), whose better alignment lets
#: more neighbours in: 13 pairs at 432x240, texture ratio 0.678 at 1 px, 0.706 at 1.5, 0.719 at 2
#: (0.721 before, with the completed flow at 1 px), flicker ratio 1.012 / 1.042 / 1.066 (1.093).
_DETAIL_SIGMA_PX = 2.0


def _split_detail(
    change: NDArray[np.float32],
    ys: NDArray[np.intp],
    xs: NDArray[np.intp],
    detail: float | NDArray[np.float32],
) -> NDArray[np.float32]:
    """The coarse part of a per-pixel ``change`` (n, 3) plus ``detail`` times its fine part.

    ``detail``: one share for every pixel, or (n,) one per pixel.

    Averaging a fill with its flow-aligned neighbours removes flicker but, wherever they are
    not aligned to the pixel, also the fine detail of all of them. The coarse part (the change
    blurred over the pixels ``(ys, xs)`` by a normalised Gaussian of ``_DETAIL_SIGMA_PX``) is
    what flickers most; the fine detail of the frame's own fill is kept but for ``detail``.
    Measured on 13 pairs at 432x240 (radius 4, detail 0.15 against radius 2 and all detail
    averaged): texture ratio 0.635 -> 0.715, flicker ratio 1.040 -> 1.093, hole PSNR 22.58 ->
    22.44 dB.
    """
    if np.all(np.asarray(detail) >= 1.0):
        return change
    y0, x0 = int(ys.min()), int(xs.min())
    shape = (int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1)
    img = np.zeros((*shape, 3), np.float32)
    weight = np.zeros(shape, np.float32)
    ry, rx = ys - y0, xs - x0
    img[ry, rx] = change
    weight[ry, rx] = 1.0
    num = cv2.GaussianBlur(img, (0, 0), _DETAIL_SIGMA_PX)
    den = cv2.GaussianBlur(weight, (0, 0), _DETAIL_SIGMA_PX)
    # Divided at the pixels only (the box around a thin hole is mostly not hole).
    coarse = num[ry, rx] / np.maximum(den[ry, rx], 1e-6)[:, None]
    share = np.float32(detail) if np.ndim(detail) == 0 else np.asarray(detail)[:, None]
    return (coarse + share * (change - coarse)).astype(np.float32)


def _bbox(mask: NDArray[np.bool_], margin: int) -> tuple[int, int, int, int]:
    """:func:`lama_video.flow.bbox` of a mask known to be non-empty."""
    box = fl.bbox(mask, margin)
    assert box is not None
    return box


def _coarse_start(
    estimator: fl.FlowEstimator,
    ga: NDArray[np.uint8],
    gb: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    box: tuple[int, int, int, int],
) -> _FlowPair:
    """Where DIS on a box of two working-size frames starts: DIS on the whole frames shrunk
    ``_COARSE_FACTOR`` times (``hole`` smooth-filled in both), scaled up, cropped to the box.

    DIS builds its pyramid from the image it is given, so on a box of 250 px it has one level
    fewer than on the 480-px frame, and a pan of 30-35 px a frame (working size) is beyond its
    coarsest level's reach: motocross-jump's whip pan and scooter-black's ride at 854x480 came
    out 5-28 px off on the ring round the hole, where DIS on the whole frames is within 1-2 px,
    and the hole's flow, completed from that ring, was off by as much. The shrunk frames see
    the whole scene's motion at a few pixels; DIS on the box refines it from its coarsest level.
    (Started this way only where the corners of :func:`_with_tracked_motion` found nothing to
    fit, nothing measurable changed: the pairs it helps include some whose corners fit the
    followed object.)
    """
    h, w = ga.shape
    size = (max(8, round(w / _COARSE_FACTOR)), max(8, round(h / _COARSE_FACTOR)))
    sa, sb = fl.resize(ga, size), fl.resize(gb, size)
    if hole.any():
        small = fl.resize(hole.view(np.uint8), size) > 0  # any cell the hole touches
        both = _smooth_fill(np.dstack([sa, sb]), small)  # both frames in one solve
        sa, sb = both[..., 0], both[..., 1]
    scale = np.array([w / size[0], h / size[1]], np.float32)
    y0, y1, x0, x1 = box

    def up(flow: NDArray[np.float32]) -> NDArray[np.float32]:
        return (fl.resize(flow, (w, h)) * scale)[y0:y1, x0:x1]  # estimate_gray copies it

    return up(fl.estimate_gray(estimator, sa, sb)), up(fl.estimate_gray(estimator, sb, sa))


def _smooth_fill(gray: NDArray[np.uint8], hole: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """``gray`` ((H, W), or (H, W, C) solved together) with ``hole`` replaced by the harmonic
    interpolation of its border."""
    return np.clip(harmonic_fill(gray.astype(np.float32), hole) + 0.5, 0, 255).astype(np.uint8)


def _any_set(mask: NDArray[np.bool_] | None) -> bool:
    """``mask is not None and mask.any()``."""
    return mask is not None and bool(mask.any())


def _to_u8(values: NDArray[np.float32]) -> NDArray[np.uint8]:
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)
