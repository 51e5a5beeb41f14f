"""Video and image-sequence I/O: the only module that imports PyAV.

Reading: :func:`open_video` returns a :class:`VideoReader` (a video file, decoded with PyAV) or
an :class:`ImageSequenceReader` (a folder of PNG/JPG/... frames). Both stream :class:`Frame`
objects holding upright RGB pictures with their presentation timestamps, and both can decode again
from the start, or from any frame (``frames(start=k)``: a video seeks to the keyframe before frame
``k`` and decodes from there; the frames equal those of a full decode).

Writing: :class:`VideoWriter` encodes frames at their source timestamps (variable frame rate is
kept), stream-copies the source's audio and metadata, and writes to a temporary file beside the
target that is renamed only when :meth:`VideoWriter.close` succeeds. A folder (or a name without a
video extension) is written as a lossless PNG sequence instead.

Choices made here (documented once):

* Rotation: decoded pictures are turned upright (display matrix applied), the pipeline works on
  upright frames, and the output is written upright with **no** rotation tag. A player therefore
  shows the output exactly as it showed the input.
* Odd sizes: H.264/HEVC cannot represent an odd width or height in 4:2:0 (their crop unit is 2 luma
  pixels), so for odd sizes a chroma-subsampled ``pix_fmt`` is replaced by ``yuv444p`` (logged).
  The decoded output then has exactly the input's width and height; the cost is that some hardware
  players lack 4:4:4 support. Padding would have changed the displayed size.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from lama_video.config import DecodeConfig, EncodeConfig
from lama_video.errors import EncodeError, VideoOpenError
from lama_video.fsutil import publish
from lama_video.outputs import (
    check_output,
    mark_folder,
    partial_prefix,
    remove_stale_partials,
)

log = logging.getLogger(__name__)

#: Suffixes read as single images / image-sequence members (lower case).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
#: Suffixes written as a video container; any other output name is written as a PNG folder.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".ogv"}
)
DEFAULT_SEQUENCE_RATE = Fraction(25)

# Tags that describe a file's own encoding; copying them to a new file would be wrong.
_OWN_TAGS = frozenset(
    {
        "major_brand",
        "minor_version",
        "compatible_brands",
        "encoder",
        "duration",
        "number_of_frames",
        "number_of_bytes",
        "bps",
        "vendor_id",
    }
)
# Encoder options for codecs with a CRF/preset interface; other codecs get no options.
_RATE_OPTIONS: dict[str, tuple[str, ...]] = {
    "libx264": ("crf", "preset"),
    "libx264rgb": ("crf", "preset"),
    "libx265": ("crf", "preset"),
    "libvpx-vp9": ("crf",),
    "libsvtav1": ("crf",),
}
_SUBSAMPLED_TO_444 = {
    "yuv420p": "yuv444p",
    "yuv422p": "yuv444p",
    "nv12": "yuv444p",
    "yuv420p10le": "yuv444p10le",
    "yuv422p10le": "yuv444p10le",
}


@dataclass(frozen=True)
class ColorInfo:
    """FFmpeg colour tags of the video stream (AVCOL_* integer codes; 2 = unspecified)."""

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0  # 0 unspecified, 1 limited (tv/mpeg), 2 full (pc/jpeg)


@dataclass(frozen=True)
class VideoInfo:
    """What is known about an input before decoding it.

    ``width``/``height`` are the upright (display) size, after rotation. ``n_frames`` is the
    container's claim and is never trusted for control flow.
    """

    path: Path
    width: int
    height: int
    time_base: Fraction
    frame_rate: Fraction | None = None
    start_pts: int = 0
    n_frames: int | None = None
    duration_s: float | None = None
    rotation: int = 0  # degrees clockwise applied to decoded pictures to make them upright
    has_audio: bool = False
    is_image_sequence: bool = False
    codec_name: str = ""
    color: ColorInfo = field(default_factory=ColorInfo)
    pix_fmt: str = ""  # decoded pixel format of the source ("" for image sequences)
    audio_codecs: tuple[str, ...] = ()  # codec name of every audio stream, in stream order


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in decode (presentation) order.
        pts: presentation timestamp in ``time_base`` units (None for image sequences).
        time_base: seconds per pts tick.
        rgb: (H, W, 3) uint8 RGB, upright.
        duration: display time in ``time_base`` units as stored (None if unknown); the writer
            passes it on, so the last frame of a variable-frame-rate video keeps its length.
    """

    index: int
    pts: int | None
    time_base: Fraction
    rgb: NDArray[np.uint8]
    duration: int | None = None


# -------------------------------------------------------------------------------------------- paths


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    parts = re.split(r"(\d+)", path.name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p != "")


def list_image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (``2.png`` before ``10.png``).

    Hidden files and other suffixes are ignored. Names without numbers sort lexicographically.
    """
    root = Path(folder)
    files = [
        p
        for p in root.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return sorted(files, key=_natural_key)


def is_image_sequence_path(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` names a frame folder: an existing directory or a non-video name."""
    p = Path(path)
    if p.is_dir():
        return True
    if p.exists():
        return False
    return p.suffix.lower() not in VIDEO_EXTENSIONS and p.suffix.lower() not in IMAGE_EXTENSIONS


# ------------------------------------------------------------------------------------ single images


def read_image(path: str | os.PathLike[str]) -> NDArray[np.uint8]:
    """Decode one still image to (H, W, 3) uint8 RGB (alpha dropped, grey replicated).

    Raises:
        VideoOpenError: the file is missing or not a decodable image.
    """
    p = Path(path)
    try:
        with av.open(str(p)) as container:
            frame = next(container.decode(video=0))
            return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, StopIteration, OSError) as err:
        raise VideoOpenError(
            f"cannot decode image '{p}': expected a readable PNG/JPG/BMP/TIFF/WebP file; "
            f"check the file ({type(err).__name__})"
        ) from err


def write_png(path: str | os.PathLike[str], rgb: NDArray[np.uint8]) -> None:
    """Write (H, W, 3) uint8 RGB losslessly as an 8-bit RGB PNG."""
    rgb = _check_rgb(rgb)
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    ctx.time_base = Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    data = b"".join(bytes(pkt) for pkt in [*ctx.encode(frame), *ctx.encode(None)])
    Path(path).write_bytes(data)


def _check_rgb(rgb: Any) -> NDArray[np.uint8]:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got shape {arr.shape} dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


# ------------------------------------------------------------------------------------------ reading


def open_video(
    path: str | os.PathLike[str],
    *,
    decode: DecodeConfig | None = None,
    frame_rate: Fraction | None = None,
) -> VideoReader | ImageSequenceReader:
    """Open a video file or a folder of frames for reading.

    Args:
        path: a video file, or a folder of images (sorted naturally by the number in their names).
        decode: decoder settings (threads, corrupt-frame budget).
        frame_rate: frames per second of an image sequence (default 25); ignored for video files.

    Raises:
        VideoOpenError: missing, unreadable, empty or zero-frame input (one-line message).
    """
    p = Path(path)
    if not p.exists():
        raise VideoOpenError(
            f"input '{p}' does not exist: expected a video file or a folder of frames; "
            "check the path"
        )
    if p.is_dir():
        return ImageSequenceReader(p, frame_rate=frame_rate)
    return VideoReader(p, decode=decode)


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of frames in a video file or frame folder, counted without decoding pictures.

    A video's packets are demuxed and counted (one compressed packet per frame for the codecs this
    tool writes and reads), which takes a fraction of a decode; the container's own frame count is
    not used. Used to check mask counts before any work starts.

    Raises:
        VideoOpenError: the input cannot be opened.
    """
    p = Path(path)
    if p.is_dir():
        return len(list_image_files(p))
    container = VideoReader(p)._open_container()
    try:
        stream = container.streams.video[0]
        n = 0
        try:
            for packet in container.demux(stream):
                # NOTE: flush packets at EOF carry no data (size 0); they are not frames.
                if packet.size:
                    n += 1
        except EOFError:
            pass
        except av.FFmpegError:
            pass  # a truncated tail: decoding will report it with the corrupt-frame budget
        return n
    finally:
        container.close()


def _disk_error(path: Path, err: BaseException) -> EncodeError:
    reason = getattr(err, "strerror", None) or str(err)
    return EncodeError(
        f"cannot write output '{path}' ({reason}): expected a writable folder with free space; "
        "free space or choose another folder (nothing was left under the output's name)"
    )


def _clockwise_degrees(display_rotation: float) -> int:
    """PyAV ``frame.rotation`` (counter-clockwise display-matrix angle) -> clockwise turn."""
    cw = round(-display_rotation) % 360
    snapped = round(cw / 90.0) * 90 % 360
    if snapped != cw:
        log.warning("rotation %s deg is not a multiple of 90; using %d", display_rotation, snapped)
    return snapped


def _upright(rgb: NDArray[np.uint8], rotation_cw: int) -> NDArray[np.uint8]:
    if rotation_cw == 0:
        return rgb
    # np.rot90 turns counter-clockwise for positive k.
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation_cw // 90)))


class _SeekFailed(Exception):
    """A seek did not reach the planned frame; the reader decodes from the start instead."""


@dataclass(frozen=True)
class _PacketIndex:
    """Where every frame of a video stream lies, learnt by demuxing its packets (no decoding).

    Attributes:
        frame_pts: pts of every frame in frame (presentation) order, strictly increasing; frame
            ``k`` of a full decode has pts ``frame_pts[k]``.
        decode_pos: ``{pts: position of its packet in decode (file) order}``.
        keyframes: ``(decode position, pts)`` of every keyframe packet, in decode order.
    """

    frame_pts: tuple[int, ...]
    decode_pos: dict[int, int]
    keyframes: tuple[tuple[int, int], ...]


class VideoReader:
    """Decode a video file with PyAV into upright RGB frames.

    The constructor opens the file and decodes the first frame to validate it (a file without any
    decodable frame is a :class:`VideoOpenError`). Every call of :meth:`frames` reopens the
    container and decodes from the start (or from the keyframe before ``start``), so several
    passes are possible.

    Attributes:
        info: what the container says, with ``width``/``height`` already upright.
        corrupt_frames: packets that failed to decode and were skipped during the last pass.
    """

    def __init__(self, path: str | os.PathLike[str], *, decode: DecodeConfig | None = None) -> None:
        self.path = Path(path)
        self.decode_config = decode if decode is not None else DecodeConfig()
        self.corrupt_frames = 0
        self._closed = False
        self._first_pts: int | None = None  # pts of the first frame a full decode gives
        self._index: _PacketIndex | None = None
        self._index_reason = ""  # why there is no usable packet index ("" = not built yet)
        self.info = self._probe()

    # -- probing

    def _open_container(self) -> Any:
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
            raise VideoOpenError(
                f"cannot open '{self.path}' as a video ({type(err).__name__}: {err}): expected a "
                "readable video file (mp4, mkv, mov, ...); check that it is complete"
            ) from err
        if not container.streams.video:
            container.close()
            raise VideoOpenError(
                f"'{self.path}' has no video stream: expected a video file; "
                "give a video or a frame folder"
            )
        return container

    def _probe(self) -> VideoInfo:
        first: Any = None
        container = self._open_container()
        try:
            stream = container.streams.video[0]
            for frame in self._decode_stream(container, stream):
                first = frame
                break
            if first is None:
                raise VideoOpenError(
                    f"'{self.path}' contains no decodable video frame: expected at least one; "
                    "check that the file is complete"
                )
            self._first_pts = first.pts
            rotation = _clockwise_degrees(first.rotation)
            w, h = first.width, first.height
            if rotation in (90, 270):
                w, h = h, w
            tb = stream.time_base or Fraction(1, 90000)
            rate = stream.average_rate or stream.guessed_rate or None
            cc = stream.codec_context
            dur: float | None = None
            if stream.duration is not None:
                dur = float(stream.duration * tb)
            elif container.duration is not None:
                dur = container.duration / 1_000_000
            return VideoInfo(
                path=self.path,
                width=w,
                height=h,
                time_base=Fraction(tb),
                frame_rate=Fraction(rate) if rate else None,
                start_pts=stream.start_time if stream.start_time is not None else (first.pts or 0),
                n_frames=stream.frames or None,
                duration_s=dur,
                rotation=rotation,
                has_audio=bool(container.streams.audio),
                codec_name=cc.name,
                color=ColorInfo(
                    primaries=int(
                        first.color_primaries if first.color_primaries else cc.color_primaries
                    ),
                    transfer=int(first.color_trc if first.color_trc else cc.color_trc),
                    matrix=int(first.colorspace if first.colorspace else cc.colorspace),
                    range=int(first.color_range if first.color_range else cc.color_range),
                ),
                pix_fmt=first.format.name,
                audio_codecs=tuple(a.codec_context.name for a in container.streams.audio),
            )
        finally:
            container.close()

    # -- decoding

    def _decode_packet(self, packet: Any) -> list[Any]:
        """Decode one packet (an empty flush packet drains the decoder); tests inject faults."""
        return packet.decode()

    def _decode_stream(
        self, container: Any, stream: Any, packets: Iterator[Any] | None = None
    ) -> Iterator[Any]:
        """Yield the av.VideoFrames of ``stream``, skipping up to ``max_corrupt_frames`` packets.

        ``packets`` is the stream's demux iterator when the caller has started it (after a seek);
        by default a new one is made here.
        """
        stream.thread_type = "AUTO"
        if self.decode_config.threads:
            stream.codec_context.thread_count = self.decode_config.threads
        self.corrupt_frames = 0
        budget = self.decode_config.max_corrupt_frames
        # One persistent demux generator: at EOF it yields an empty packet per stream whose decode()
        # drains the decoder, so frames held back for B-frame reordering or frame threading are
        # not lost.
        if packets is None:
            packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except EOFError:
                # NOTE: EOFError subclasses FFmpegError, so it must be caught first (normal end).
                return
            except av.FFmpegError as err:
                # The demuxer cannot go on (truncated or damaged container): drain what was decoded.
                self._count_corrupt(err, budget)
                with contextlib.suppress(av.FFmpegError):
                    yield from stream.codec_context.decode(None)
                return
            try:
                frames = self._decode_packet(packet)
            except EOFError:
                # NOTE: EOFError subclasses FFmpegError; after the flush packet the decoder is done.
                return
            except av.FFmpegError as err:
                self._count_corrupt(err, budget)
                continue
            yield from frames

    def _count_corrupt(self, err: Exception, budget: int) -> None:
        self.corrupt_frames += 1
        log.warning(
            "%s: skipped a corrupt packet (%d so far): %s", self.path, self.corrupt_frames, err
        )
        if self.corrupt_frames > budget:
            raise VideoOpenError(
                f"'{self.path}' has more than {budget} corrupt frames: expected a decodable video; "
                "repair or re-encode it, or raise decode.max_corrupt_frames"
            ) from err

    def _to_rgb(self, frame: Any) -> NDArray[np.uint8]:
        kwargs: dict[str, Any] = {}
        if frame.color_range:
            kwargs["src_color_range"] = int(frame.color_range)
        rgb = frame.to_ndarray(format="rgb24", **kwargs)
        return _upright(rgb, self.info.rotation)

    def frames(self, start: int = 0) -> Iterator[Frame]:
        """Decode the video from frame ``start`` (default: the whole video).

        With ``start > 0`` the container seeks to the last keyframe at or before that frame and
        decodes from there, so the cost follows the distance from that keyframe, not ``start``.
        Frame positions come from one pass over the packets (demuxed, not decoded): sorted pts
        give the frame order, packet flags the keyframes. Where that index looks unreliable
        (packets without pts or with equal pts, discarded or corrupt packets, a stream that does
        not begin with a keyframe, a first frame that is not the earliest pts) or the seek does
        not land where planned, it decodes from the start and drops the first ``start`` frames
        instead (logged); so does a packet that fails to decode between the keyframe and frame
        ``start``. Either way the frames equal those a full decode gives from ``start`` on. One
        limit: a packet before that keyframe that demuxes cleanly but fails to decode would shift
        a full decode's ``index`` numbers, which a seek cannot see.

        Args:
            start: 0-based index of the first frame to yield (as :attr:`Frame.index` numbers
                frames); a ``start`` past the last frame yields nothing.

        Yields:
            :class:`Frame` with ``index`` counted from the start of the video, ``rgb`` (H, W, 3)
            uint8 RGB, upright, and ``pts`` exactly as stored (in ``info.time_base`` units;
            frames without a pts get the previous pts + one frame).

        Raises:
            ValueError: ``start`` is negative.
            VideoOpenError: more corrupt packets than ``decode.max_corrupt_frames``.
        """
        if start < 0:
            raise ValueError(f"start={start}: expected a frame index >= 0")
        if self._closed:
            raise VideoOpenError(f"reader of '{self.path}' is closed: open the video again")
        if start == 0:
            yield from self._frames_from_start(0)
            return
        index = self._packet_index()
        if index is None:
            log.info(
                "%s: decoding from the start to frame %d (%s)", self.path, start, self._index_reason
            )
            yield from self._frames_from_start(start)
            return
        if start >= len(index.frame_pts):
            return
        target_pts = index.frame_pts[start]
        target_pos = index.decode_pos[target_pts]
        # The last keyframe, in decode order, that is decoded before the target and not shown
        # after it: decoding from there reaches the target with every reference it needs.
        key = None
        for pos, pts in index.keyframes:
            if pos > target_pos:
                break
            if pts <= target_pts:
                key = (pos, pts)
        if key is None or key[0] == 0:
            yield from self._frames_from_start(start)  # the target is in the first GOP
            return
        seeking = self._frames_seeking(start, index, key)
        try:
            try:
                first = next(seeking)
            except _SeekFailed as why:
                log.info("%s: decoding from the start to frame %d (%s)", self.path, start, why)
                yield from self._frames_from_start(start)
                return
            yield first
            yield from seeking
        finally:
            seeking.close()  # a consumer that stops early: close the container now

    def _frames_from_start(self, skip: int) -> Iterator[Frame]:
        """Decode from frame 0; the first ``skip`` frames are decoded but not yielded."""
        container = self._open_container()
        try:
            stream = container.streams.video[0]
            tb = self.info.time_base
            step = self._pts_step()
            last_pts: int | None = None
            decoded = 0
            for index, vf in enumerate(self._decode_stream(container, stream)):
                decoded = index + 1
                pts = vf.pts
                if pts is None:
                    pts = 0 if last_pts is None else last_pts + step
                last_pts = pts
                if index < skip:
                    continue  # decoded only to reach frame `skip` (no RGB conversion)
                yield Frame(
                    index=index,
                    pts=int(pts),
                    time_base=tb,
                    rgb=self._to_rgb(vf),
                    duration=int(vf.duration) if vf.duration else None,
                )
            self._warn_if_short(decoded)
        finally:
            container.close()

    def _warn_if_short(self, decoded: int) -> None:
        """Warn when decoding ended well before the container's frame count or duration."""
        info = self.info
        expected = info.n_frames
        if not expected and info.duration_s and info.frame_rate:
            expected = round(info.duration_s * float(info.frame_rate))
        if expected and decoded < 0.95 * expected - 1:
            log.warning(
                "%s: decoding ended after %d frames but the container announces about %d; the "
                "file is probably truncated (the output has %d frames)",
                self.path, decoded, expected, decoded,
            )

    def _frames_seeking(
        self, start: int, index: _PacketIndex, key: tuple[int, int]
    ) -> Iterator[Frame]:
        """Seek to keyframe ``key`` (decode position, pts) and yield frames from ``start`` on.

        Raises:
            _SeekFailed: before the first frame is yielded, when the seek or the decoded frames
                do not match ``index`` (the caller then decodes from the start).
        """
        key_pos, key_pts = key
        target_pts = index.frame_pts[start]
        container = self._open_container()
        try:
            stream = container.streams.video[0]
            tb = self.info.time_base
            try:
                container.seek(key_pts, stream=stream, backward=True, any_frame=False)
                packets = container.demux(stream)
                landed = next(packets)
            except (av.FFmpegError, StopIteration) as err:
                raise _SeekFailed(f"seek to pts {key_pts} failed: {err}") from err
            # NOTE: demuxers differ in which timestamp they seek by (mov: dts, shifted); landing
            # on an earlier keyframe only costs time, landing anywhere else is refused.
            pos = index.decode_pos.get(landed.pts) if landed.pts is not None else None
            if not landed.is_keyframe or pos is None or pos > key_pos:
                raise _SeekFailed(
                    f"seek to pts {key_pts} landed on packet pts {landed.pts}, "
                    f"keyframe={landed.is_keyframe}"
                )
            decoded = self._decode_stream(container, stream, itertools.chain([landed], packets))
            step = self._pts_step()
            last_pts: int | None = None
            n = 0
            for vf in decoded:
                pts = vf.pts
                if n == 0 and self.corrupt_frames:
                    # A full decode drops that packet too, which shifts the frame numbers.
                    raise _SeekFailed("a packet between the keyframe and the frame is corrupt")
                if n == 0:
                    # Before the target every decoded frame must be one the index knows, in order.
                    if (
                        pts is None
                        or pts not in index.decode_pos
                        or (last_pts is not None and pts <= last_pts)
                    ):
                        raise _SeekFailed(f"decoded pts {pts} after pts {last_pts} is unexpected")
                    last_pts = pts
                    if pts < target_pts:
                        continue
                    if pts != target_pts:
                        raise _SeekFailed(f"frame {start} (pts {target_pts}) was not decoded")
                elif pts is None:
                    pts = last_pts + step  # type: ignore[operator]
                last_pts = pts
                yield Frame(
                    index=start + n,
                    pts=int(pts),
                    time_base=tb,
                    rgb=self._to_rgb(vf),
                    duration=int(vf.duration) if vf.duration else None,
                )
                n += 1
            if n == 0:
                raise _SeekFailed(f"decoding ended before frame {start} (pts {target_pts})")
        finally:
            container.close()

    def _pts_step(self) -> int:
        """One frame in pts units (for frames without a pts)."""
        tb, rate = self.info.time_base, self.info.frame_rate
        return max(1, round(1 / (rate * tb))) if rate else 1

    def _packet_index(self) -> _PacketIndex | None:
        """The packet index of the video stream (built once), or None if it cannot be trusted.

        None sets ``_index_reason``.
        """
        if self._index is not None or self._index_reason:
            return self._index
        pts_list: list[int] = []
        keyframes: list[tuple[int, int]] = []
        reason = ""
        container = self._open_container()
        try:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if not packet.size:
                    continue  # flush packets at EOF carry no data; they are not frames
                if packet.pts is None:
                    reason = f"packet {len(pts_list)} has no pts"
                    break
                if packet.is_discard or packet.is_corrupt:
                    reason = f"packet {len(pts_list)} is marked discard/corrupt"
                    break
                if packet.is_keyframe:
                    keyframes.append((len(pts_list), int(packet.pts)))
                pts_list.append(int(packet.pts))
        except EOFError:
            pass
        except av.FFmpegError as err:
            reason = f"demuxing failed: {err}"
        finally:
            container.close()
        frame_pts = tuple(sorted(pts_list))
        if reason:
            pass
        elif not pts_list:
            reason = "no packets"
        elif len(set(frame_pts)) != len(frame_pts):
            reason = "packets share a pts"
        elif not keyframes or keyframes[0][0] != 0:
            reason = "the stream does not begin with a keyframe"
        elif self._first_pts != frame_pts[0]:
            # The decoder drops or retimes frames at the start (e.g. leading pictures of an open
            # GOP), so frame numbers would not follow the packets.
            reason = f"first frame pts {self._first_pts} != earliest packet pts {frame_pts[0]}"
        if reason:
            self._index_reason = reason
            return None
        self._index = _PacketIndex(
            frame_pts=frame_pts,
            decode_pos={p: i for i, p in enumerate(pts_list)},
            keyframes=tuple(keyframes),
        )
        return self._index

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Forbid further passes (containers are opened per pass and closed when it ends)."""
        self._closed = True

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageSequenceReader:
    """Read a folder of images (PNG, JPG, ...) as a video of upright RGB frames.

    Frames are ordered naturally by the number in their file names. Every frame must have the first
    frame's size. ``pts`` is None; ``time_base`` is ``1 / frame_rate``.
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, frame_rate: Fraction | None = None
    ) -> None:
        self.path = Path(folder)
        self.files = list_image_files(self.path)
        if not self.files:
            raise VideoOpenError(
                f"folder '{self.path}' holds no image files: expected frames named like 00000.png "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}); check the folder"
            )
        rate = Fraction(frame_rate) if frame_rate is not None else DEFAULT_SEQUENCE_RATE
        if rate <= 0:
            raise VideoOpenError(f"frame rate {rate} for '{self.path}' must be > 0: give e.g. 25")
        first = read_image(self.files[0])
        self.corrupt_frames = 0
        self.info = VideoInfo(
            path=self.path,
            width=int(first.shape[1]),
            height=int(first.shape[0]),
            time_base=1 / rate,
            frame_rate=rate,
            n_frames=len(self.files),
            duration_s=float(len(self.files) / rate),
            is_image_sequence=True,
            codec_name=self.files[0].suffix.lower().lstrip("."),
        )

    def frames(self, start: int = 0) -> Iterator[Frame]:
        """Yield every image from file ``start`` on as a :class:`Frame`, in order.

        Args:
            start: 0-based index of the first frame (``start >= `` the file count yields nothing).

        Yields:
            :class:`Frame` with ``index`` counted from the first file, ``rgb`` (H, W, 3) uint8
            RGB, ``pts`` None.

        Raises:
            ValueError: ``start`` is negative.
            VideoOpenError: an image is unreadable or differs in size from the first one.
        """
        if start < 0:
            raise ValueError(f"start={start}: expected a frame index >= 0")
        for i, f in enumerate(self.files[start:], start=start):
            rgb = read_image(f)
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise VideoOpenError(
                    f"frame '{f}' is {rgb.shape[1]}x{rgb.shape[0]}: expected "
                    f"{self.info.width}x{self.info.height} like the first frame; resize the frames"
                )
            yield Frame(index=i, pts=None, time_base=self.info.time_base, rgb=rgb)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Nothing to release (kept for symmetry with :class:`VideoReader`)."""

    def __enter__(self) -> ImageSequenceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------ writing


def _copy_tags(src: dict[str, str], dst: Any) -> None:
    for key, value in src.items():
        low = key.lower()
        if low in _OWN_TAGS or low.startswith("_statistics") or low.startswith("duration"):
            continue
        with contextlib.suppress(Exception):
            dst[key] = value


def _encoder_rate(codec: str, src: Any) -> int:
    """The source's sample rate if ``codec`` accepts it, else the closest rate it accepts."""
    rate = int(src.codec_context.sample_rate)
    try:
        rates = av.codec.Codec(codec, "w").audio_rates
    except (av.FFmpegError, ValueError):
        return rate
    if not rates or rate in rates:
        return rate
    return min(rates, key=lambda r: (abs(r - rate), -r))


class _AudioTrack:
    """One source audio stream and its output stream (stream copy or re-encode)."""

    def __init__(self, src: Any, out: Any, reencode: bool) -> None:
        self.src = src
        self.out = out
        self.reencode = reencode
        self.packets_written = 0


class VideoWriter:
    """Encode frames to a video file (or a PNG folder) atomically, keeping timing, audio, metadata.

    Frames are encoded at their own pts in the source's time base (variable frame rate is kept).
    Audio streams of ``source`` are stream-copied packet for packet (``encode.audio == "copy"``),
    interleaved with the video as its timestamps advance; a codec the output container cannot hold
    is re-encoded (AAC where possible) with a warning. Output goes to a temporary file beside the
    target, renamed on :meth:`close`; :meth:`abort` (or leaving a ``with`` block by an exception)
    removes it.

    Args:
        path: output file (video suffix) or folder (PNG sequence ``00000.png, 00001.png, ...``).
        info: the source's :class:`VideoInfo` (size, time base, frame rate, colour tags).
        encode: encoder settings (codec, crf, preset, pix_fmt, audio policy).
        source: file whose audio and metadata are copied; default ``info.path`` for a video input.
        overwrite: replace an existing output (otherwise that is an :class:`EncodeError`).

    Raises:
        EncodeError: output exists, equals the input, or the encoder refuses the settings.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: VideoInfo,
        *,
        encode: EncodeConfig | None = None,
        source: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.info = info
        self.encode_config = encode if encode is not None else EncodeConfig()
        if source is None and not info.is_image_sequence and Path(info.path).is_file():
            source = info.path
        # A folder of frames has no audio or container metadata to copy.
        self.source = Path(source) if source is not None and not Path(source).is_dir() else None
        self.overwrite = overwrite
        self.frames_written = 0
        self._is_sequence = is_image_sequence_path(self.path)
        self._tmp: Path | None = None
        self._container: Any = None
        self._source_container: Any = None
        self._stream: Any = None
        self._audio: list[_AudioTrack] = []
        self._audio_packets: Iterator[Any] | None = None
        self._pending_audio: Any = None
        self._last_pts: int | None = None
        self._durations: dict[int, int] = {}
        self._done = False
        self._check_target()
        for stale in remove_stale_partials(self.path):
            log.info("removed %s, left by a run that was killed", stale)
        try:
            if self._is_sequence:
                self._tmp = Path(
                    tempfile.mkdtemp(prefix=partial_prefix(self.path), dir=self.path.parent)
                )
            else:
                self._open_video()
        except OSError as err:
            self.abort()
            raise _disk_error(self.path, err) from err
        except BaseException:
            self.abort()
            raise

    # -- setup

    def _check_target(self) -> None:
        check_output(
            self.path,
            inputs=(self.info.path, self.source),
            kind="folder" if self._is_sequence else "file",
            overwrite=self.overwrite,
        )
        if self.path.suffix.lower() in IMAGE_EXTENSIONS:
            raise EncodeError(
                f"output '{self.path}' is a single image name: expected a video file "
                f"({', '.join(sorted(VIDEO_EXTENSIONS))}) or a folder for a PNG sequence; rename it"
            )
        if not self.path.parent.is_dir():
            raise EncodeError(
                f"output folder '{self.path.parent}' does not exist: expected an existing "
                "folder; create it"
            )

    def _open_video(self) -> None:
        fd, tmp = tempfile.mkstemp(
            prefix=partial_prefix(self.path), suffix=self.path.suffix, dir=self.path.parent
        )
        os.close(fd)
        self._tmp = Path(tmp)
        fmt_options: dict[str, str] = {}
        tb = Fraction(self.info.time_base)
        if self.path.suffix.lower() in {".mp4", ".m4v", ".mov"} and tb.numerator == 1:
            # Keep the source's track timescale so pts are written (and read back) exactly as given;
            # the mov muxer would otherwise multiply small timescales (e.g. 1/600) up to >= 10000.
            fmt_options["video_track_timescale"] = str(tb.denominator)
        try:
            self._container = av.open(str(self._tmp), "w", options=fmt_options)
        except (av.FFmpegError, OSError, ValueError) as err:
            raise EncodeError(
                f"cannot create output '{self.path}' ({err}): expected a writable video file name; "
                "check the folder and the extension"
            ) from err
        self._add_video_stream()
        if self.source is not None:
            self._copy_metadata_and_audio()

    def _add_video_stream(self) -> None:
        cfg = self.encode_config
        info = self.info
        rate = info.frame_rate or (1 / info.time_base if info.is_image_sequence else Fraction(25))
        try:
            stream = self._container.add_stream(cfg.codec, rate=rate)
        except (av.FFmpegError, ValueError, KeyError) as err:
            raise EncodeError(
                f"video encoder '{cfg.codec}' is not available: expected an FFmpeg encoder "
                "this PyAV build has (e.g. libx264, libx265, libvpx-vp9); set encode.codec"
            ) from err
        pix_fmt = cfg.pix_fmt
        if (info.width % 2 or info.height % 2) and pix_fmt in _SUBSAMPLED_TO_444:
            new = _SUBSAMPLED_TO_444[pix_fmt]
            log.warning(
                "%dx%d is odd: %s cannot hold it exactly, encoding %s instead (same size)",
                info.width,
                info.height,
                pix_fmt,
                new,
            )
            pix_fmt = new
        stream.width = info.width
        stream.height = info.height
        stream.pix_fmt = pix_fmt
        stream.time_base = info.time_base
        cc = stream.codec_context
        cc.time_base = info.time_base
        if not info.is_image_sequence:
            cc.color_primaries = info.color.primaries
            cc.color_trc = info.color.transfer
            cc.colorspace = info.color.matrix
            cc.color_range = info.color.range
        options: dict[str, str] = {}
        wanted = _RATE_OPTIONS.get(cfg.codec, ())
        if "crf" in wanted:
            options["crf"] = str(cfg.crf)
            if cfg.codec == "libvpx-vp9":
                options["b"] = "0"  # constant quality mode of libvpx needs a zero bitrate target
        if "preset" in wanted:
            options["preset"] = cfg.preset
        stream.options = options
        self._stream = stream
        self._pix_fmt = pix_fmt

    def _copy_metadata_and_audio(self) -> None:
        assert self.source is not None
        try:
            src = av.open(str(self.source))
        except (av.FFmpegError, OSError) as err:
            raise EncodeError(
                f"cannot open source '{self.source}' for audio/metadata ({err}): expected a "
                "readable video; check the path or set encode.audio to none"
            ) from err
        self._source_container = src
        _copy_tags(dict(src.metadata), self._container.metadata)
        if src.streams.video:
            _copy_tags(dict(src.streams.video[0].metadata), self._stream.metadata)
        mode = self.encode_config.audio
        if mode == "none" or not src.streams.audio:
            return
        supported = self._container.supported_codecs
        for a in src.streams.audio:
            names = {a.codec_context.name, a.codec_context.codec.canonical_name}
            reencode = mode == "aac" or not (names & supported)
            if reencode:
                codec = "aac" if "aac" in supported else self._container.default_audio_codec
                if mode == "copy":
                    log.warning(
                        "%s cannot hold %s audio (stream %d): re-encoding it to %s",
                        self.path.suffix,
                        a.codec_context.name,
                        a.index,
                        codec,
                    )
                out = self._container.add_stream(codec, rate=_encoder_rate(codec, a))
                with contextlib.suppress(Exception):
                    out.layout = a.codec_context.layout
            else:
                out = self._container.add_stream_from_template(a)
            _copy_tags(dict(a.metadata), out.metadata)
            self._audio.append(_AudioTrack(a, out, reencode))
        self._audio_packets = src.demux(*[t.src for t in self._audio])

    # -- audio interleaving

    def _next_audio(self) -> Any:
        if self._pending_audio is None and self._audio_packets is not None:
            try:
                self._pending_audio = next(self._audio_packets)
            except StopIteration:
                self._audio_packets = None
            except av.FFmpegError as err:
                # NOTE: EOFError is an FFmpegError too; either way the source's audio ends here.
                log.warning("%s: audio demux stopped early: %s", self.source, err)
                self._audio_packets = None
        return self._pending_audio

    def _pump_audio(self, until_s: float | None) -> None:
        """Mux source audio packets whose time is <= ``until_s`` (all remaining ones if None)."""
        while (pkt := self._next_audio()) is not None:
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            if until_s is not None and ts is not None and float(ts * pkt.time_base) > until_s:
                return
            self._pending_audio = None
            track = next(t for t in self._audio if t.src.index == pkt.stream.index)
            if track.reencode:
                self._reencode_audio(track, pkt)
                continue
            if pkt.dts is None:  # flush packet of the demuxer: carries no data
                continue
            pkt.stream = track.out
            self._mux(pkt)
            track.packets_written += 1

    def _reencode_audio(self, track: _AudioTrack, pkt: Any) -> None:
        try:
            frames = pkt.decode()
        except av.FFmpegError as err:
            log.warning("%s: undecodable audio packet skipped: %s", self.source, err)
            return
        for frame in frames:
            if frame.pts is not None:
                # pts in the frame's own sample units; PyAV's resampler converts rate and format.
                frame.pts = round(frame.pts * frame.time_base * frame.sample_rate)
                frame.time_base = Fraction(1, frame.sample_rate)
            try:
                out_packets = track.out.encode(frame)
            except av.FFmpegError as err:
                raise EncodeError(
                    f"audio encoder {track.out.codec_context.name} failed on '{self.source}' "
                    f"({err}): expected encodable audio; set encode.audio to none"
                ) from err
            for out_pkt in out_packets:
                self._mux(out_pkt)
                track.packets_written += 1

    def _mux(self, packet: Any) -> None:
        try:
            self._container.mux(packet)
        except OSError as err:  # PyAV's errno errors are OSErrors too: a full or failing disk
            raise _disk_error(self.path, err) from err
        except av.FFmpegError as err:
            raise EncodeError(
                f"cannot write '{self.path}' ({err}): expected the container to accept the "
                "streams; "
                "try an .mkv output or encode.audio: aac"
            ) from err

    # -- public

    def write(self, frame: Frame | NDArray[np.uint8], pts: int | None = None) -> None:
        """Encode one frame.

        Args:
            frame: a :class:`Frame` (its ``pts`` is used) or an (H, W, 3) uint8 RGB array,
                upright, of ``info.width`` x ``info.height``.
            pts: timestamp in ``info.time_base`` units when ``frame`` is an array. None (or a Frame
                without pts, e.g. from an image sequence) means ``index / frame_rate``.

        Raises:
            EncodeError: the writer is closed, the size is wrong, or pts does not increase.
        """
        if self._done:
            raise EncodeError(f"writer of '{self.path}' is closed: open a new VideoWriter")
        duration: int | None = None
        if isinstance(frame, Frame):
            rgb, pts, duration = frame.rgb, frame.pts, frame.duration
        else:
            rgb = frame
        rgb = _check_rgb(rgb)
        if rgb.shape[:2] != (self.info.height, self.info.width):
            raise EncodeError(
                f"frame {self.frames_written} is {rgb.shape[1]}x{rgb.shape[0]}: expected "
                f"{self.info.width}x{self.info.height} (the source's upright size); resize it"
            )
        if self._is_sequence:
            assert self._tmp is not None
            try:
                write_png(self._tmp / f"{self.frames_written:05d}.png", rgb)
            except OSError as err:
                raise _disk_error(self.path, err) from err
            self.frames_written += 1
            return
        if pts is None:
            rate = self.info.frame_rate or Fraction(25)
            pts = self.info.start_pts + round(self.frames_written / (rate * self.info.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            raise EncodeError(
                f"frame {self.frames_written} has pts {pts} <= previous {self._last_pts}: expected "
                "strictly increasing timestamps; drop duplicate frames before writing"
            )
        self._last_pts = pts
        vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        kwargs: dict[str, Any] = {}
        if self.info.color.matrix in (1, 4, 5, 6, 7, 9):
            kwargs["dst_colorspace"] = self.info.color.matrix
        if self.info.color.range:
            kwargs["dst_color_range"] = self.info.color.range
        vf = vf.reformat(format=self._pix_fmt, **kwargs)
        vf.pts = int(pts)
        vf.time_base = self.info.time_base
        if duration:
            self._durations[int(pts)] = int(duration)
        try:
            packets = self._stream.encode(vf)
        except av.FFmpegError as err:
            raise EncodeError(
                f"encoder '{self.encode_config.codec}' refused frame {self.frames_written} "
                f"({err}): "
                "expected valid settings; check encode.codec/pix_fmt/preset"
            ) from err
        self._mux_video(packets)
        self.frames_written += 1

    def _mux_video(self, packets: list[Any]) -> None:
        for pkt in packets:
            # Encoders derive packet durations from the nominal frame rate; the stored duration of
            # each frame is what keeps a variable-frame-rate video's last frame (and length) exact.
            if pkt.pts is not None and (d := self._durations.pop(pkt.pts, None)):
                pkt.duration = d
            if self._audio and pkt.dts is not None:
                self._pump_audio(float(pkt.dts * pkt.time_base))
            self._mux(pkt)

    def close(self) -> None:
        """Flush the encoder, mux the remaining audio and rename the temporary output to ``path``.

        Raises:
            EncodeError: nothing was written, or finalising failed (the temporary output is
                removed).
        """
        if self._done:
            return
        try:
            if self.frames_written == 0:
                raise EncodeError(
                    f"no frame was written to '{self.path}': expected at least one; "
                    "check the input and masks"
                )
            if self._is_sequence:
                self._finish_sequence()
            else:
                try:
                    self._mux_video(self._stream.encode(None))
                except av.FFmpegError as err:
                    raise EncodeError(f"encoder flush failed for '{self.path}': {err}") from err
                self._pump_audio(None)
                for track in self._audio:
                    if track.reencode:
                        for pkt in track.out.encode(None):
                            self._mux(pkt)
                self._container.close()
                self._container = None
                self._close_source()
                assert self._tmp is not None
                publish(self._tmp, self.path)
                self._tmp = None
        except EncodeError:
            self.abort()
            raise
        except (av.FFmpegError, OSError) as err:  # e.g. the disk filled up writing the trailer
            self.abort()
            raise _disk_error(self.path, err) from err
        except BaseException:
            self.abort()
            raise
        self._done = True

    def _finish_sequence(self) -> None:
        assert self._tmp is not None
        mark_folder(self._tmp)
        backup: Path | None = None
        if self.path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old-", dir=self.path.parent))
            os.replace(self.path, backup / "old")
        publish(self._tmp, self.path)
        self._tmp = None
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)

    def _close_source(self) -> None:
        if self._source_container is not None:
            with contextlib.suppress(Exception):
                self._source_container.close()
            self._source_container = None

    def abort(self) -> None:
        """Stop writing and remove the temporary output; the target path is left untouched."""
        self._done = True
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        self._close_source()
        if self._tmp is not None:
            if self._tmp.is_dir():
                shutil.rmtree(self._tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._tmp.unlink()
            self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def describe(info: VideoInfo) -> str:
    """One-line human summary of ``info`` (for logs and the CLI)."""
    rate = f"{float(info.frame_rate):.3f} fps" if info.frame_rate else "unknown fps"
    kind = "image sequence" if info.is_image_sequence else info.codec_name
    extra = f", rotation {info.rotation}" if info.rotation else ""
    audio = f", audio {'/'.join(info.audio_codecs)}" if info.audio_codecs else ""
    return f"{info.path.name}: {info.width}x{info.height} {kind}, {rate}{extra}{audio}"


__all__ = [
    "DEFAULT_SEQUENCE_RATE",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ColorInfo",
    "Frame",
    "ImageSequenceReader",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "describe",
    "is_image_sequence_path",
    "list_image_files",
    "open_video",
    "read_image",
    "write_png",
]
