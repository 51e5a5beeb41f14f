"""The object-removal pipeline: decode -> masks -> dilate -> engine -> composite -> encode.

Every stage is a generator, so memory is bounded by the engine's window, never by the video's
length. This module imports no media or UI library; it chains the leaf services.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video import masks as masks_mod
from lama_video.composite import composite
from lama_video.config import InpaintConfig, RunConfig
from lama_video.engines import ImageEngine, make_image_engine
from lama_video.errors import ConfigError, EncodeError, MaskError
from lama_video.masks import Box, FrameRange, MaskTrack
from lama_video.outputs import OutputKind, check_output
from lama_video.overlay import Detection, Unblender, detect_overlays
from lama_video.qc import QcInfo, QcReport, invented_everywhere, tint
from lama_video.video import (
    Frame,
    VideoInfo,
    VideoWriter,
    count_frames,
    for_review,
    frame_at,
    is_image_sequence_path,
    open_video,
    read_image,
)

log = logging.getLogger(__name__)

Item = tuple[Frame, NDArray[np.bool_]]
Result = tuple[Frame, NDArray[np.bool_], NDArray[np.uint8]]

T = TypeVar("T")

# Items decoded ahead of the engine, and frames queued for the encoder: at most this many, and at
# most this many bytes of frames in the queue (a 1080p item for the encoder, frame, fill and hole,
# is 14.5 MB), but never fewer than 2. The engine hands over a window's frames at once; the deeper
# the encoder's queue, the sooner it starts the next window while they are encoded (854x480:
# 7.2 -> 7.5 frames/s with 128 MB instead of 8 items; 1080p: 1.86 -> 2.01 frames/s, +16 MB).
_PREFETCH_DEPTH = 8
_PREFETCH_BYTES = 48 << 20
_ENCODE_DEPTH = 64
_ENCODE_BYTES = 128 << 20


def _queue_depth(most: int, budget: int, item_bytes: int) -> int:
    return max(2, min(most, budget // max(1, item_bytes)))


_POLL_S = 0.1
# A mask marking more of a frame than this is most likely inverted (black where the object is):
# warned of once.
_MOST = 0.6


#: Arrays of at least this many bytes get their own memory mapping (glibc's M_MMAP_THRESHOLD).
_MMAP_THRESHOLD = 1 << 20
_heap_tuned = False


def _tune_heap() -> None:
    """Give large arrays their own mappings, returned to the system when freed (glibc only).

    glibc raises its mmap threshold each time a mapped block is freed (up to 32 MB), after which
    frame-sized arrays come from the heap of whichever thread allocates them; freed between
    longer-lived ones, they fragment it and the process keeps the pages: at 1080p that was
    about 400 MB of peak RSS (1,897 MB against 1,484 with the threshold fixed at 1 MB). Once per
    process; left alone where ``MALLOC_MMAP_THRESHOLD_`` is set or the C library is not glibc.
    """
    global _heap_tuned
    if _heap_tuned:
        return
    _heap_tuned = True
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows)
        return
    m_mmap_threshold = -3  # <malloc.h>
    mallopt(m_mmap_threshold, _MMAP_THRESHOLD)


class _Prefetch(Generic[T]):
    """Runs an iterator in a background thread, at most ``depth`` items ahead of the consumer.

    Decoding (PyAV) and mask reading (OpenCV) release the GIL, so they overlap with the engine.
    An exception in the producer is re-raised in the consumer; :meth:`close` stops the producer.
    """

    _DONE = object()

    def __init__(self, source: Iterator[T], depth: int, name: str) -> None:
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item: tuple[Any, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                if not self._put((item, None)):
                    return
            self._put((self._DONE, None))
        except BaseException as err:  # re-raised in the consuming thread
            self._put((self._DONE, err))

    def __iter__(self) -> Iterator[T]:
        while True:
            item, err = self._queue.get()
            if err is not None:
                raise err
            if item is self._DONE:
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _EncodeThread:
    """Composites and encodes frames in a background thread, fed through a bounded queue.

    libx264 and the compositing (NumPy/OpenCV) release the GIL, so encoding frame t overlaps with
    the engine working on later frames. Errors are re-raised in the caller on the next
    :meth:`put` or in :meth:`finish`.
    """

    def __init__(self, write: Callable[[Any], None], depth: int) -> None:
        self._write = write
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lama-video-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stop.is_set():
                return
            try:
                self._write(item)
            except BaseException as err:  # re-raised in the producing thread
                self._error = err
                return

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: Any) -> None:
        while True:
            self._check()
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._check()
                    raise RuntimeError("encoder thread stopped") from None  # pragma: no cover

    def finish(self) -> None:
        """Wait until every queued frame is written; re-raise an encoding error."""
        self.put(None)
        self._thread.join()
        self._check()

    def cancel(self) -> None:
        """Stop without writing what is still queued (the output is aborted afterwards)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
            self._thread.join(timeout=_POLL_S)


class PerFrameEngine:
    """The baseline video engine: each frame inpainted alone by an image engine, in batches.

    Same interface as :class:`lama_video.temporal.TemporalEngine`.
    """

    def __init__(
        self, image_engine: ImageEngine, batch_size: int = InpaintConfig().batch_size
    ) -> None:
        self.image_engine = image_engine
        self.batch_size = batch_size
        self.name = f"per-frame {image_engine.name}"

    def _flush(self, batch: list[Item]) -> Iterator[Result]:
        todo = [i for i, (_, hole) in enumerate(batch) if hole.any()]
        filled: dict[int, NDArray[np.uint8]] = {}
        if todo:
            frames = np.stack([batch[i][0].rgb for i in todo])
            holes = np.stack([batch[i][1] for i in todo])
            out = self.image_engine.inpaint(frames, holes)
            filled = {i: out[k] for k, i in enumerate(todo)}
        for i, (frame, hole) in enumerate(batch):
            yield frame, hole, filled.get(i, frame.rgb)

    def process(
        self, items: Iterable[Item], progress: Callable[[int], None] | None = None
    ) -> Iterator[Result]:
        """Yield ``(frame, hole, filled_rgb)`` for each ``(frame, hole)`` in order."""
        batch: list[Item] = []
        for item in items:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield from self._flush(batch)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            yield from self._flush(batch)
            if progress:
                progress(len(batch))


def build_image_engine(cfg: RunConfig) -> ImageEngine:
    """The image engine ``cfg.inpaint.engine`` names (``auto``: LaMa when weights are found)."""
    return make_image_engine(cfg.inpaint)


def build_video_engine(cfg: RunConfig, image_engine: ImageEngine | None = None):
    """The temporal engine (default) or the per-frame baseline (``temporal.enabled: false``)."""
    image_engine = image_engine or build_image_engine(cfg)
    if cfg.temporal.enabled:
        from lama_video.temporal import TemporalEngine

        return TemporalEngine(image_engine, cfg.temporal)
    return PerFrameEngine(image_engine, cfg.inpaint.batch_size)


class HoleStream:
    """The one frame/mask stream: each frame paired with its dilated hole.

    Used by :func:`remove_object` and by the Ray parts of a split video, so both see the same
    holes. Iterating yields ``(frame, hole)`` items for a video engine; the undilated masks stay
    here, bit-packed (a 1080p mask is 2 MB as bools, 260 KB packed, and a window's worth wait
    here), until :meth:`pop_core` takes them for compositing.

    Args:
        frames: decoded frames in order (from ``reader.frames(start)``).
        masks: one (H, W) bool mask per frame, aligned with ``frames``.
        dilate_px: hole growth (``masks.dilate_px``).
        stop: frame index to stop before (None = the end of ``frames``).
        within: frames it says no to get no hole (``remove --range``); None = every frame.

    Attributes:
        seen: frames yielded so far.
        with_hole: frames whose mask has any hole.
        full: frames whose dilated hole covers the whole frame.
    """

    def __init__(
        self,
        frames: Iterable[Frame],
        masks: Iterator[NDArray[np.bool_]],
        dilate_px: int,
        *,
        stop: int | None = None,
        within: Callable[[Frame], bool] | None = None,
    ) -> None:
        self._frames = frames
        self._masks = masks
        self._dilate_px = dilate_px
        self._stop = stop
        self._within = within
        self._cores: dict[int, tuple[tuple[int, int], NDArray[np.uint8]]] = {}
        self.seen = 0
        self.with_hole = 0
        self.full = 0
        self._warned_most = False

    def __iter__(self) -> Iterator[Item]:
        for frame in self._frames:
            if self._stop is not None and frame.index >= self._stop:
                return
            core = next(self._masks, None)
            if core is None:
                raise MaskError(
                    f"the masks ran out at frame {frame.index} but the video has more frames; "
                    "expected one mask per frame"
                )
            self.seen += 1
            if self._within is not None and not self._within(frame):
                core = np.zeros_like(core)  # outside --range: the frame is left as it is
            self._cores[frame.index] = (
                (core.shape[0], core.shape[1]),
                np.packbits(core, axis=None),
            )
            hole = masks_mod.dilate(core, self._dilate_px)
            marked = int(np.count_nonzero(core))
            self.with_hole += marked > 0
            self.full += bool(hole.all())
            if not self._warned_most and marked / core.size > _MOST and not hole.all():
                self._warned_most = True  # once: an inverted mask marks every frame alike
                log.warning(
                    "frame %d's mask marks %.0f %% of the frame for removal (white = remove): "
                    "if your masks are black where the object is, invert them",
                    frame.index,
                    100 * marked / core.size,
                )
            yield frame, hole

    def pop_core(self, index: int) -> NDArray[np.bool_]:
        """The undilated mask of frame ``index`` (removed from the stream's store)."""
        (h, w), bits = self._cores.pop(index)
        return np.unpackbits(bits, count=h * w).reshape(h, w).view(bool)


def find_overlays(
    input: str | os.PathLike[str],
    cfg: RunConfig | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[Detection, int | None]:
    """Look for static overlays in a video or frame folder (one decoding pass).

    Args:
        progress: called with 1 after each decoded frame.

    Returns:
        What :func:`lama_video.overlay.detect_overlays` found, and the clip's frame count.
    """
    cfg = cfg or RunConfig()
    in_path = Path(input)

    def frames(reader: Any) -> Iterator[NDArray[np.uint8]]:
        for frame in reader.frames():
            yield frame.rgb
            if progress:
                progress(1)

    with open_video(in_path, decode=cfg.decode) as reader:
        info = reader.info
        n = info.n_frames if info.is_image_sequence else count_frames(in_path)
        found = detect_overlays(
            frames(reader),
            max_samples=cfg.overlay.detect_samples,
            n_frames=n,
            max_side_px=cfg.overlay.detect_max_side_px,
        )
    return found, n


def overlay_region(
    overlay: str | os.PathLike[str],
    input: Path,
    *,
    width: int,
    height: int,
    cfg: RunConfig,
) -> NDArray[np.bool_]:
    """The static overlay's pixels: found in ``input`` (``"auto"``) or read from a mask image.

    Raises:
        MaskError: nothing found, or the path is not one mask image of the frame's size.
    """
    if str(overlay) == "auto":
        log.info("looking for static overlays (one decoding pass)")
        found, n = find_overlays(input, cfg)
        if not found.found:
            raise MaskError(
                f"no static overlay found in {str(input)!r} ({found.frames} of "
                f"{n if n is not None else 'its'} frames sampled), so no output was written; "
                "paint the overlay's mask and pass --overlay MASK.png (a static overlay over a "
                "static scene cannot be told from the scene)"
            )
        for r in found.regions:
            log.info(
                "overlay found at x=%d y=%d %dx%d (%d px, opacity about %.0f%%)",
                r.x,
                r.y,
                r.width,
                r.height,
                r.pixels,
                100 * r.opacity,
            )
        return found.mask
    if not Path(overlay).exists():
        raise MaskError(
            f"--overlay {str(overlay)!r} does not exist; expected one mask image of the static "
            "overlay (white where it is), or auto to find it"
        )
    track = masks_mod.load_masks(
        Path(overlay), width=width, height=height, n_frames=None, cfg=cfg.masks
    )
    if track.static is None:
        raise MaskError(
            f"--overlay {str(overlay)!r}: expected one mask image of the static overlay (white "
            "where it is), not a sequence; per-frame masks go to --mask"
        )
    return track.static


def _unblended(
    results: Iterator[Result],
    unblender: Unblender,
    qc_of: Callable[[int], QcInfo | None] | None = None,
) -> Iterator[Result]:
    """Each result with the overlay un-blended by a fit that has seen the
    ``unblender.fit_frames`` frames after it as well as every frame before it (the frames wait:
    at most ``fit_frames`` + 1 are held, one more than the first frames always waited for).

    The fit improves with the frames it sees: when only the first ``fit_frames`` waited, and
    every later frame went out with the fit of the frames up to it, the semi-transparent
    overlays of ``bench/overlays.py`` (40-frame clips, 432x240) came back at 35.51 dB, 30.79 with
    other overlays (``--shift 1``); with the wait 35.66 and 32.15. Where the fit calls the
    overlay opaque (filled, not un-blended) the frames go out as before: opaque running
    timestamps lost with the wait (paragliding-launch's 31.97 -> 30.70 dB, flicker 1.65 -> 1.95).

    ``qc_of(frame index)`` is the engine's QC record of the frame (how much it vouches for each
    filled pixel), so invented pixels barely count in the fit.
    """
    waiting: deque[Result] = deque()
    for frame, hole, filled in results:
        unblender.observe(frame.rgb, filled, qc_of(frame.index) if qc_of is not None else None)
        waiting.append((frame, hole, filled))
        if unblender.n < unblender.fit_frames:
            continue
        if unblender.fit().plateau >= unblender.max_opacity:
            out = len(waiting)  # filled, not un-blended: nothing to wait for
        else:
            out = len(waiting) - unblender.fit_frames
        for _ in range(out):
            f, h, fill = waiting.popleft()
            yield f, h, unblender.apply(f.rgb, fill)
    for f, h, fill in waiting:
        yield f, h, unblender.apply(f.rgb, fill)


def _with_region(
    masks: Iterator[NDArray[np.bool_]], region: NDArray[np.bool_], *, alone: bool
) -> Iterator[NDArray[np.bool_]]:
    """The masks with the overlay's region added (or the region alone, for every frame)."""
    if alone:
        while True:
            yield region
    for m in masks:
        yield m | region


@dataclass(frozen=True)
class RemoveResult:
    """What :func:`remove_object` did."""

    output: Path
    frames: int
    engine: str
    seconds: float


def check_paths(
    input_path: Path,
    output_path: Path,
    *,
    overwrite: bool,
    sources: tuple[str | os.PathLike[str] | None, ...] = (),
) -> None:
    """Refuse an output that is an input or may not be replaced (before any work starts).

    Args:
        input_path: the video or frame folder.
        output_path: a video file, or a folder for a PNG sequence.
        overwrite: the user allows replacing what this tool wrote.
        sources: the other inputs (mask folder/video/image, keyframe mask files).

    Raises:
        EncodeError: see :func:`lama_video.outputs.check_output`.
    """
    check_output(
        output_path,
        inputs=(input_path, *sources),
        kind=output_kind(output_path),
        overwrite=overwrite,
    )


def output_kind(path: Path) -> OutputKind:
    """What the writer makes of ``path``: a video file, or a folder for a PNG sequence."""
    return "folder" if is_image_sequence_path(path) else "file"


def _check_distinct(paths: dict[str, Path | None]) -> None:
    """The outputs of one run are different paths (they may not exist yet)."""
    seen: dict[Path, str] = {}
    for what, path in paths.items():
        if path is None:
            continue
        key = Path(os.path.abspath(path))
        if key in seen:
            raise EncodeError(
                f"{what} {str(path)!r} is the {seen[key]} path too; expected a different path "
                "for each output"
            )
        seen[key] = what


def _check_hole_counts(
    frames: int, with_hole: int, full: int, within: FrameRange | None = None
) -> None:
    """Fail when no mask has a hole or every hole is the whole frame; warn about full frames.

    Raised before the writer publishes anything, so no output is left in either case.
    """
    if frames and not with_hole and within is not None:
        raise MaskError(
            f"no mask marks anything within --range {within} (the clip has {frames} frames): "
            "nothing to remove, so no output was written; expected a range where the masks "
            "mark the object"
        )
    if frames and not with_hole:
        raise MaskError(
            f"every one of the {frames} masks is empty (no pixel above the threshold): nothing "
            "to remove, so no output was written; expected white pixels where the object is"
        )
    if frames and full == frames:
        raise MaskError(
            f"the hole covers the whole frame in all {frames} frames: nothing can be filled from "
            "nothing, so no output was written; expected masks that leave part of each frame"
        )
    if full:
        log.warning(
            "%d of %d frames are fully masked (the hole covers the whole frame): nothing of those "
            "frames is kept, they are filled only from their neighbours or left as they are",
            full,
            frames,
        )


def _range_frames(frames: FrameRange | None, n_frames: int | None) -> tuple[int, int] | None:
    """``(first, end)`` frame numbers of a ``--range`` in frames within a clip of known length,
    where a mask sequence may hold one mask per frame of the range only; else None."""
    if frames is None or frames.seconds or n_frames is None:
        return None
    first = int(frames.start or 0)
    end = min(n_frames, int(frames.end) if frames.end is not None else n_frames)
    return (first, end) if 0 < end - first < n_frames else None


def _masks_in_range(
    track: MaskTrack, span: tuple[int, int], n_frames: int, shape: tuple[int, int]
) -> tuple[Iterator[NDArray[np.bool_]], int | None]:
    """The masks of ``track`` for the whole clip: as they are when there is one per frame of
    the clip (or one for all), and when there is one per frame of the range ``span`` only
    (an editor's mask sequence exported for the frames where the object is), placed there,
    with no hole elsewhere."""
    first, end = span
    if track.count is None or track.count == n_frames:
        return track.masks(), track.count
    if track.count != end - first:
        raise MaskError(
            f"{track.description} has {track.count} masks but the video has {n_frames} frames "
            f"and --range {first}:{end} holds {end - first}; expected one mask per frame of the "
            "clip or of the range"
        )
    empty = np.zeros(shape, bool)

    def placed() -> Iterator[NDArray[np.bool_]]:
        yield from itertools.repeat(empty, first)
        yield from track.masks()
        yield from itertools.repeat(empty, n_frames - end)

    log.info("%d masks for frames %d-%d (--range)", track.count, first, end - 1)
    return placed(), n_frames


def _in_range(frames: FrameRange, info: VideoInfo) -> Callable[[Frame], bool]:
    """Whether a frame is in ``frames``, by its number or its time from the clip's start."""
    rate = info.frame_rate or Fraction(25)

    def within(frame: Frame) -> bool:
        if frame.pts is None:
            time_s = frame.index / float(rate)
        else:
            time_s = float((frame.pts - info.start_pts) * frame.time_base)
        return frames.contains(frame.index, time_s)

    return within


def open_mask_track(
    source: str | os.PathLike[str] | Box | None,
    *,
    width: int,
    height: int,
    n_frames: int | None,
    cfg: RunConfig,
) -> MaskTrack:
    """Open the per-frame mask source (validated against the video now)."""
    if source is None:
        raise MaskError(
            "no mask given; pass --mask PATH, --box X,Y,W,H or --keyframe-mask FRAME:PATH"
        )
    src = source if isinstance(source, Box) else Path(source)
    return masks_mod.load_masks(src, width=width, height=height, n_frames=n_frames, cfg=cfg.masks)


def load_references(
    references: Mapping[int, str | os.PathLike[str]] | None,
    width: int,
    height: int,
    n_frames: int | None,
) -> dict[int, NDArray[np.uint8]]:
    """Read and check clean plates: ``{frame index: image}`` -> ``{frame index: RGB}``.

    Raises:
        MaskError: an index outside the clip, or an image of another size than the video.
        VideoOpenError: an image that is missing or unreadable.
    """
    plates: dict[int, NDArray[np.uint8]] = {}
    for index, path in sorted((references or {}).items()):
        if index < 0 or (n_frames is not None and index >= n_frames):
            clip = f"0..{n_frames - 1}" if n_frames else "in the clip"
            raise MaskError(
                f"--reference {index}:{path}: frame {index} is not in the clip (frames {clip}); "
                "expected FRAME:IMAGE with a 0-based frame number"
            )
        rgb = read_image(path)
        if rgb.shape[:2] != (height, width):
            raise MaskError(
                f"--reference {index}:{path} is {rgb.shape[1]}x{rgb.shape[0]} but the video is "
                f"{width}x{height}; expected the video's frame {index} at full size with the "
                "object removed (export it from the frame, e.g. with `lama-video remove ... -o "
                "frames/` and an image editor)"
            )
        plates[index] = rgb
    return plates


#: A scene plate larger than this many times the video's longest side is shrunk to it (a
#: 24-megapixel still for a 1080p clip): alignment only needs the scene at about its scale.
_SCENE_PLATE_MAX_SCALE = 2.0


def load_scene_plates(
    paths: Sequence[str | os.PathLike[str]], width: int, height: int
) -> list[NDArray[np.uint8]]:
    """Read plates of the empty scene (any size; very large ones shrunk, see above).

    Raises:
        VideoOpenError: an image that is missing or unreadable.
    """
    out = []
    limit = _SCENE_PLATE_MAX_SCALE * max(width, height)
    for path in paths:
        rgb = read_image(path)
        side = max(rgb.shape[:2])
        if side > limit:
            f = limit / side
            size = (max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f)))
            rgb = cast(NDArray[np.uint8], cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
        out.append(np.ascontiguousarray(rgb))
    return out


def remove_object(
    input: str | os.PathLike[str],
    mask: str | os.PathLike[str] | Box | None = None,
    output: str | os.PathLike[str] | None = None,
    *,
    config: RunConfig | None = None,
    keyframe_masks: Mapping[int, str | os.PathLike[str]] | None = None,
    overwrite: bool = False,
    image_engine: ImageEngine | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
    track_progress: Callable[[int], None] | None = None,
    qc: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    overlay: str | os.PathLike[str] | None = None,
    references: Mapping[int, str | os.PathLike[str]] | None = None,
    scene_plates: Sequence[str | os.PathLike[str]] | None = None,
    frames: FrameRange | None = None,
) -> RemoveResult:
    """Remove the masked object from a video (or image sequence) and write the result.

    Args:
        input: a video file or a folder of frames.
        mask: a mask folder, mask video, single mask image or :class:`Box` (per-frame masks).
        output: a video file, or a folder for a PNG sequence.
        config: run settings (defaults: ``RunConfig()``).
        keyframe_masks: ``{frame index: mask image}`` tracked through the clip instead of ``mask``.
        overwrite: replace an existing output.
        image_engine: use this engine instead of building one from ``config.inpaint``.
        progress: called with a number of frames as they are processed (the temporal engine
            counts a window's frames while it works on them, see ``temporal._Progress``); it
            sums to the frames written.
        on_start: called once with the frame count (None if unknown) before processing starts.
        track_progress: with ``keyframe_masks``, called with the number of frames the tracking
            just processed; the tracking runs before the first frame is removed and counts
            ``n_frames + max(keyframe index)`` in all (forward pass, then backward).

        qc: also write a review video (or PNG folder) of the output with each hole pixel tinted
            by where it came from: propagated from other frames, invented by the image engine,
            or low-confidence (see :mod:`lama_video.qc`).
        report: also write a JSON report: per frame, the share of hole pixels propagated /
            invented / low-confidence and their mean confidence, and the frames worth a look.
        overlay: a static overlay (logo, watermark, burnt-in text) to remove too: ``"auto"``
            finds it (:func:`find_overlays`), a path is one mask image of it. Where it is
            semi-transparent the background is un-blended (:class:`lama_video.overlay.Unblender`),
            where it is opaque it is filled; its region joins the holes of ``mask``, if any.
        references: ``{frame index: image}``, clean plates: that frame with the object removed
            by hand (After Effects' reference frames). The plate's frame counts as footage with
            nothing missing, propagated to the others like any frame; what frames beyond its
            reach still miss comes from the nearest plate aligned to them, instead of being
            invented (the temporal engine only).
        scene_plates: images of the empty scene that are no frame of the clip (a clean plate
            shot on set, any size): aligned to each frame where a reference does not serve, and
            used where they fit around the hole (the temporal engine only).
        frames: only these frames are changed (by number or time); the others are written as
            they are, whatever their masks say (After Effects' work area).

    Raises:
        LamaVideoError: bad input; nothing is written under ``output`` in that case.
    """
    if output is None:
        raise EncodeError("no output given; pass -o/--output PATH")
    cfg = config or RunConfig()
    _tune_heap()
    in_path, out_path = Path(input), Path(output)
    sources = (
        None if isinstance(mask, Box) else mask,
        *(keyframe_masks or {}).values(),
        None if overlay is None or str(overlay) == "auto" else overlay,
        *(references or {}).values(),
        *(scene_plates or ()),
    )
    if (references or scene_plates) and not cfg.temporal.enabled:
        flag = "--reference" if references else "--clean-plate"
        raise ConfigError(
            f"{flag} needs the temporal engine (the clean plate is carried to the other "
            "frames along their motion); drop --no-temporal / temporal.enabled: false"
        )
    check_paths(in_path, out_path, overwrite=overwrite, sources=sources)
    qc_path = Path(qc) if qc is not None else None
    report_path = Path(report) if report is not None else None
    _check_distinct({"output": out_path, "QC review": qc_path, "report": report_path})
    if qc_path is not None:
        check_output(
            qc_path,
            inputs=(in_path, *sources, out_path),
            kind=output_kind(qc_path),
            overwrite=overwrite,
            what="QC review",
        )
    if report_path is not None:
        check_output(
            report_path,
            inputs=(in_path, *sources, out_path, qc_path),
            kind="file",
            overwrite=overwrite,
            what="report",
        )
    t0 = time.perf_counter()
    with open_video(in_path, decode=cfg.decode) as reader:
        info = reader.info
        n_frames = info.n_frames if info.is_image_sequence else count_frames(in_path)
        if keyframe_masks:
            if mask is not None:
                raise MaskError("give either --mask or --keyframe-mask, not both")
            from lama_video.propagate import check_keyframes, load_keyframes

            # Checked now (files, sizes, indices), tracked below once the engine is ready.
            keyframes = check_keyframes(
                load_keyframes(keyframe_masks, cfg), info.height, info.width, n_frames=n_frames
            )
            masks_iter: Iterator[NDArray[np.bool_]] = iter(())
            mask_count: int | None = n_frames
        elif mask is None and overlay is not None:
            masks_iter, mask_count = iter(()), None
        else:
            span = _range_frames(frames, n_frames)
            track = open_mask_track(
                mask,
                width=info.width,
                height=info.height,
                n_frames=n_frames if span is None else None,
                cfg=cfg,
            )
            masks_iter = track.masks()
            mask_count = track.count
            if span is not None and n_frames is not None:
                masks_iter, mask_count = _masks_in_range(
                    track, span, n_frames, (info.height, info.width)
                )
        region = None
        if overlay is not None:
            region = overlay_region(overlay, in_path, width=info.width, height=info.height, cfg=cfg)
        plates = load_references(references, info.width, info.height, n_frames)
        if plates:
            from lama_video.temporal import check_plate

            # Each plate against its frame now, before any work (the engine checks it again
            # away from the hole when it gets there).
            for index, plate in plates.items():
                frame = frame_at(reader, index)
                if frame is not None:
                    check_plate(plate, frame.rgb, None, index)
        engine = build_video_engine(cfg, image_engine)
        log.info("engine: %s", engine.name)
        if plates:
            engine.references = plates
            log.info("clean plates on frame(s) %s", ", ".join(str(k) for k in sorted(plates)))
        if scene_plates:
            engine.scene_plates = load_scene_plates(scene_plates, info.width, info.height)
            log.info("%d clean plate(s) of the scene", len(scene_plates))
        reviewing = qc_path is not None or report_path is not None
        qc_report = QcReport() if report_path is not None else None
        if (reviewing or overlay is not None) and hasattr(engine, "record_qc"):
            engine.record_qc = True  # the overlay's fit weighs filled pixels by it
        if overlay is not None and hasattr(engine, "pin_invented_edges"):
            engine.pin_invented_edges = False  # the overlay's fit reads the fill (see there)
            engine.chain_inventions = False
        if on_start:
            on_start(n_frames)
        if keyframe_masks:
            from lama_video.propagate import propagate_masks, tracking_summary

            # Tracked here, in the calling thread, not lazily inside the decode thread: Ctrl-C
            # then stops it at once. The masks are kept bit-packed (a few KB per frame).
            log.info("tracking %d keyframe mask(s) through the clip", len(keyframes))
            tracked = propagate_masks(reader, keyframes, cfg, progress=track_progress)
            if qc_report is not None:
                qc_report.tracking = tracking_summary(tracked, keyframes)
            masks_iter = iter(tracked)
        if region is not None:
            masks_iter = _with_region(masks_iter, region, alone=mask is None and not keyframe_masks)
        within = None if frames is None else _in_range(frames, info)
        stream = HoleStream(reader.frames(), masks_iter, cfg.masks.dilate_px, within=within)

        if info.has_audio and cfg.encode.audio != "none" and is_image_sequence_path(out_path):
            log.warning(
                "%s is a folder of PNG frames, which holds no audio: the source's audio is not "
                "written (write a video file, .mp4, .mkv or .mov, to keep it, or take it from "
                "the source beside the frames)",
                out_path.name,
            )
        written = 0
        with contextlib.ExitStack() as writers:
            writer = writers.enter_context(
                VideoWriter(out_path, info, encode=cfg.encode, source=in_path, overwrite=overwrite)
            )
            qc_writer = None
            if qc_path is not None:
                qc_writer = writers.enter_context(
                    VideoWriter(
                        qc_path,
                        info,
                        encode=for_review(cfg.encode),
                        source=in_path,
                        overwrite=overwrite,
                    )
                )

            def finish_frame(result: Result) -> None:
                frame, hole, filled = result
                core = stream.pop_core(frame.index)
                rgb = composite(frame.rgb, filled, hole, core, cfg.masks.feather_px)
                # A source of more than 8 bits: the fill goes into its 16-bit frame too, so
                # what is outside the holes keeps the source's depth.
                deep = (
                    None
                    if frame.deep is None
                    else composite(frame.deep, filled, hole, core, cfg.masks.feather_px)
                )
                writer.write(replace(frame, rgb=rgb, deep=deep))
                if reviewing:
                    if hasattr(engine, "pop_qc"):
                        qc_info = engine.pop_qc(frame.index)
                    else:  # each frame on its own: every hole pixel is the image engine's
                        qc_info = invented_everywhere(hole) if hole.any() else None
                    if qc_writer is not None:
                        qc_writer.write(replace(frame, rgb=tint(rgb, qc_info), deep=None))
                    if qc_report is not None:
                        t = None if frame.pts is None else float(frame.pts * frame.time_base)
                        qc_report.add(frame.index, t, qc_info)
                elif hasattr(engine, "pop_qc"):
                    engine.pop_qc(frame.index)  # read by the overlay's fit; not kept

            pixels = info.width * info.height
            deep_bytes = 6 * pixels if info.bit_depth > 8 else 0  # a 16-bit copy rides along
            depth = _queue_depth(_PREFETCH_DEPTH, _PREFETCH_BYTES, 4 * pixels + deep_bytes)
            # Each thread is stopped and joined whatever stops the run, Ctrl-C during the set-up
            # below included: a daemon thread left inside an OpenCV call when the interpreter
            # exits is killed there and aborts the process (exit status -6 instead of 130).
            decoded = _Prefetch(iter(stream), depth, "lama-video-decode")
            try:
                depth = _queue_depth(_ENCODE_DEPTH, _ENCODE_BYTES, 7 * pixels + deep_bytes)
                encoder = _EncodeThread(finish_frame, depth)
                try:
                    # The engine counts the progress: the temporal engine as it works on a
                    # window, not only as frames come out of it (see temporal._Progress).
                    results = engine.process(decoded, progress)
                    if region is not None:
                        unblender = Unblender(
                            masks_mod.dilate(region, cfg.masks.dilate_px),
                            max_opacity=cfg.overlay.max_unblend_opacity,
                            noise=cfg.overlay.noise_levels,
                            fit_frames=cfg.overlay.fit_frames,
                        )
                        peek = getattr(engine, "peek_qc", None)
                        results = _unblended(results, unblender, peek)
                    for result in results:
                        encoder.put(result)
                        written += 1
                    encoder.finish()
                except BaseException:
                    encoder.cancel()  # before the writer aborts: no write may run concurrently
                    raise
            finally:
                decoded.close()
            if mask_count is not None and stream.seen < mask_count:
                raise MaskError(
                    f"{mask_count} masks were given but the video has {stream.seen} frames; "
                    "expected one mask per frame"
                )
            _check_hole_counts(stream.seen, stream.with_hole, stream.full, frames)
    if qc_report is not None and report_path is not None:
        qc_report.write(report_path)
    return RemoveResult(
        output=out_path, frames=written, engine=engine.name, seconds=time.perf_counter() - t0
    )
