"""Decoding: :func:`open_video` -> :class:`VideoReader` (PyAV) or :class:`ImageSequenceReader`."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import struct
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from numpy.typing import NDArray

from lama_video.config import DecodeConfig
from lama_video.errors import VideoOpenError
from lama_video.video.images import (
    _clockwise_degrees,
    _upright,
    list_image_files,
    read_image_deep,
)
from lama_video.video.types import (
    DEFAULT_SEQUENCE_RATE,
    IMAGE_EXTENSIONS,
    ColorInfo,
    Frame,
    VideoInfo,
)

log = logging.getLogger(__name__)

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


def frame_at(reader: VideoReader | ImageSequenceReader, index: int) -> Frame | None:
    """Frame ``index`` (0-based) of an open reader, or None past the end; the decode started
    for it (from the nearest keyframe at or before it) is closed right after."""
    decoded = reader.frames(index)
    try:
        return next(decoded, None)
    finally:
        close = getattr(decoded, "close", None)
        if close is not None:
            close()


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


# FFmpeg's AVFieldOrder: TT and BT show the top field first, BB and TB the bottom one.
_FIELD_ORDERS = {2: "tff", 5: "tff", 3: "bff", 4: "bff"}


def _field_order(codec_context: Any, rotation: int) -> str:
    """``tff`` / ``bff`` for an interlaced stream, else ``progressive`` (also for a turned
    picture, whose rows are no fields any more)."""
    try:
        order = int(codec_context.field_order or 0)
    except (AttributeError, TypeError, ValueError):
        return "progressive"
    return _FIELD_ORDERS.get(order, "progressive") if rotation == 0 else "progressive"


def _hdr_metadata(frame: Any) -> tuple[str, str]:
    """HDR10's static metadata of a decoded frame (its side data), as :class:`VideoInfo` keeps
    it: (``mastering_display``, ``content_light``), "" for what the frame does not carry."""
    display = light = ""
    items = []
    try:
        container = frame.side_data
        for entry in container:  # SideData objects (PyAV 18.1.0) or their types (18.1.1)
            sd = entry if hasattr(entry, "type") else container[entry]
            items.append((str(sd.type), bytes(sd)))
    except (ValueError, TypeError, AttributeError, KeyError):  # a type PyAV does not know
        return display, light
    for kind, data in items:
        if kind.endswith("MASTERING_DISPLAY_METADATA") and len(data) >= 88:
            v = struct.unpack("<22i", data[:88])
            if not (v[20] and v[21]) or 0 in v[1:20:2]:
                continue  # primaries or luminance missing: x265 wants both
            # Rationals: R, G, B and the white point (x, y), then min and max luminance.
            q = [v[i] / v[i + 1] for i in range(0, 20, 2)]
            xy = [f"({round(q[i] * 50000)},{round(q[i + 1] * 50000)})" for i in range(0, 8, 2)]
            lum = f"L({round(q[9] * 10000)},{round(q[8] * 10000)})"
            display = f"G{xy[1]}B{xy[2]}R{xy[0]}WP{xy[3]}{lum}"
        elif kind.endswith("CONTENT_LIGHT_LEVEL") and len(data) >= 8:
            max_cll, max_fall = struct.unpack("<2I", data[:8])
            light = f"{max_cll},{max_fall}"
    return display, light


def has_alpha(pix_fmt: str) -> bool:
    """Whether a pixel format carries an alpha channel (yuva420p, rgba, argb, gbrap, ya8, ...)."""
    try:
        return len(av.VideoFormat(pix_fmt).components) in (2, 4)
    except (ValueError, TypeError):
        return False


def bits_per_sample(pix_fmt: str) -> int:
    """Bits a sample of a pixel format (its widest component; 8 when unknown)."""
    try:
        return max(int(c.bits) for c in av.VideoFormat(pix_fmt).components) or 8
    except (ValueError, TypeError):
        return 8


def _sample_aspect(stream: Any, rotation: int) -> Fraction | None:
    """The stream's pixel aspect ratio (width:height) as shown upright; None for square pixels
    or none stated."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    if not sar or sar <= 0 or sar == 1:
        return None
    sar = Fraction(sar)
    return 1 / sar if rotation in (90, 270) else sar


def to_8bit(deep: NDArray[np.uint16]) -> NDArray[np.uint8]:
    """16-bit RGB (0-65535) rounded to 8 bits (0-255): ``(deep + 128) // 257``, which OpenCV's
    scaled conversion gives for every 16-bit value, six times faster than NumPy's integer
    arithmetic (1.6 against 9.7 ms a 1080p frame)."""
    import cv2  # only for sources of more than 8 bits (the video package needs no OpenCV else)

    return cast(NDArray[np.uint8], cv2.convertScaleAbs(deep, alpha=1 / 257))


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
        # Read as a matte (mask videos): where the source has an alpha channel, a frame's picture
        # is that alpha, grey, unless the frame is opaque all over (then its colour).
        self.matte = False
        self._warned_size = False  # a stream that changes size midway is warned of once

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
            hdr = _hdr_metadata(first)
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
                bit_depth=bits_per_sample(first.format.name),
                sample_aspect=_sample_aspect(stream, rotation),
                audio_codecs=tuple(a.codec_context.name for a in container.streams.audio),
                field_order=_field_order(cc, rotation),
                mastering_display=hdr[0],
                content_light=hdr[1],
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

    def _to_rgb(self, frame: Any) -> tuple[NDArray[np.uint8], NDArray[np.uint16] | None]:
        """The frame as upright 8-bit RGB, and as 16-bit RGB too when the source has more than
        8 bits a sample (the 8-bit picture is then the 16-bit one rounded)."""
        kwargs: dict[str, Any] = {}
        if frame.color_range:
            kwargs["src_color_range"] = int(frame.color_range)
        w, h = self.info.width, self.info.height
        size = (h, w) if self.info.rotation in (90, 270) else (w, h)  # as stored, before turning
        if (frame.width, frame.height) != size:
            # The stream changes its size midway (a screen or stream capture that rescaled):
            # every frame is scaled to the first one's size, as FFmpeg's own tools do.
            kwargs["width"], kwargs["height"] = size
            if not self._warned_size:
                self._warned_size = True
                log.warning(
                    "%s: the video changes size midway (%dx%d, from %dx%d): frames of another "
                    "size are scaled to the first frame's",
                    self.path,
                    frame.width,
                    frame.height,
                    *size,
                )
        if self.matte and has_alpha(self.info.pix_fmt):
            rgba = frame.to_ndarray(format="rgba", **kwargs)
            alpha = rgba[..., 3]
            pic = rgba[..., :3] if alpha.min() == 255 else np.repeat(alpha[..., None], 3, axis=2)
            return _upright(np.ascontiguousarray(pic), self.info.rotation), None
        if self.info.bit_depth > 8:
            deep = _upright(frame.to_ndarray(format="rgb48le", **kwargs), self.info.rotation)
            return to_8bit(deep), deep
        rgb = frame.to_ndarray(format="rgb24", **kwargs)
        return _upright(rgb, self.info.rotation), None

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
                rgb, deep = self._to_rgb(vf)
                yield Frame(
                    index=index,
                    pts=int(pts),
                    time_base=tb,
                    rgb=rgb,
                    duration=int(vf.duration) if vf.duration else None,
                    deep=deep,
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
                self.path,
                decoded,
                expected,
                decoded,
            )

    def _frames_seeking(
        self, start: int, index: _PacketIndex, key: tuple[int, int]
    ) -> Generator[Frame, None, None]:
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
                rgb, deep = self._to_rgb(vf)
                yield Frame(
                    index=start + n,
                    pts=int(pts),
                    time_base=tb,
                    rgb=rgb,
                    duration=int(vf.duration) if vf.duration else None,
                    deep=deep,
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
        first, deep = read_image_deep(self.files[0])
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
            # 16-bit frames (a compositor's PNGs) keep their depth through Frame.deep
            bit_depth=16 if deep is not None else 8,
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
            rgb, deep = read_image_deep(f)
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise VideoOpenError(
                    f"frame '{f}' is {rgb.shape[1]}x{rgb.shape[0]}: expected "
                    f"{self.info.width}x{self.info.height} like the first frame; resize the frames"
                )
            if deep is None and self.info.bit_depth > 8:
                deep = rgb.astype(np.uint16) * 257  # an 8-bit frame among 16-bit ones
            elif self.info.bit_depth <= 8:
                deep = None  # a 16-bit frame among 8-bit ones: read as the first
            yield Frame(index=i, pts=None, time_base=self.info.time_base, rgb=rgb, deep=deep)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Nothing to release (kept for symmetry with :class:`VideoReader`)."""

    def __enter__(self) -> ImageSequenceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(info: VideoInfo) -> str:
    """One-line human summary of ``info`` (for logs and the CLI)."""
    rate = f"{float(info.frame_rate):.3f} fps" if info.frame_rate else "unknown fps"
    kind = "image sequence" if info.is_image_sequence else info.codec_name
    extra = f", rotation {info.rotation}" if info.rotation else ""
    audio = f", audio {'/'.join(info.audio_codecs)}" if info.audio_codecs else ""
    return f"{info.path.name}: {info.width}x{info.height} {kind}, {rate}{extra}{audio}"
