"""Encoding: :class:`VideoWriter` (PyAV, audio and subtitle copy, atomic publication) or a PNG
folder."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.subtitles.subtitle import SubtitleSet
from numpy.typing import NDArray

from lama_video.config import EncodeConfig
from lama_video.errors import EncodeError
from lama_video.fsutil import publish
from lama_video.outputs import (
    check_output,
    mark_folder,
    partial_prefix,
    remove_stale_partials,
)
from lama_video.video.images import (
    _check_rgb,
    is_image_sequence_path,
    list_image_files,
    write_png,
    write_png16,
)
from lama_video.video.reader import bits_per_sample
from lama_video.video.types import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Frame,
    VideoInfo,
)

log = logging.getLogger(__name__)

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
    "libvpx": ("crf",),
    "libsvtav1": ("crf",),
}
_X264 = ("libx264", "libx264rgb")
# Encoders tried, in order, where the container refuses the one ``encode.codec: auto`` picks (a
# .webm file refuses H.264 and HEVC: VP9).
# Not libsvtav1: SVT-AV1 sets the calling thread to real-time scheduling (SCHED_FIFO 99) where it
# may (as root), and every thread started from it afterwards inherits that: a test run's CPU-load
# threads then starved the rest of the process for minutes. Asked for by name, it is used, and
# the thread's scheduling is put back after each call into it (_encode).
_FALLBACK_CODECS = ("libx264", "libvpx-vp9", "libx265", "libvpx", "mpeg4")  # libvpx: VP8 (.ogv)
# Audio codecs MPEG-TS (.ts, .mts, .m2ts) carries as themselves: its muxer writes any other as a
# private data stream that players skip, and PyAV's list of what it holds names MP2 only.
_TS_AUDIO = frozenset({"aac", "aac_latm", "ac3", "eac3", "mp2", "mp3", "opus", "dts", "truehd"})
# Text subtitles a container cannot hold are converted to the first of these it can.
_TEXT_SUBTITLES = ("subrip", "mov_text", "webvtt")
# The ASS header FFmpeg's text subtitle encoders parse before they open (its default style).
_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\nScaledBorderAndShadow: yes"
    b"\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, "
    b"OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
    b"Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0"
    b"\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    b"Text\n"
)
_SUBSAMPLED_TO_444 = {
    "yuv420p": "yuv444p",
    "yuv422p": "yuv444p",
    "nv12": "yuv444p",
    "yuv420p10le": "yuv444p10le",
    "yuv422p10le": "yuv444p10le",
}


@functools.cache
def _ffmpeg_suffixes() -> frozenset[str]:
    """File suffixes (lower case, with the dot) of every format FFmpeg writes."""
    found: set[str] = set()
    for name in av.formats_available:
        try:
            fmt = av.ContainerFormat(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        found.update("." + ext.strip().lower() for ext in fmt.extensions if ext.strip())
    return frozenset(found)


def _frame_names(folder: Path) -> list[str]:
    """PNG names for the frames of a folder of frames: each frame's own name (a compositor's
    shot_1001.png stays shot_1001.png), where those are distinct; [] otherwise (the
    frames are then numbered 00000.png, 00001.png, ...)."""
    if not folder.is_dir():
        return []
    names = [f.stem + ".png" for f in list_image_files(folder)]
    return names if len(set(names)) == len(names) else []


def _disk_error(path: Path, err: BaseException) -> EncodeError:
    reason = getattr(err, "strerror", None) or str(err)
    return EncodeError(
        f"cannot write output '{path}' ({reason}): expected a writable folder with free space; "
        "free space or choose another folder (nothing was left under the output's name)"
    )


# ------------------------------------------------------------------------------------------ writing


def _copy_tags(src: dict[str, str], dst: Any) -> None:
    for key, value in src.items():
        low = key.lower()
        if low in _OWN_TAGS or low.startswith("_statistics") or low.startswith("duration"):
            continue
        with contextlib.suppress(Exception):
            dst[key] = value


@contextlib.contextmanager
def _scheduling_kept() -> Iterator[None]:
    """Put the calling thread's scheduling back as it was where code inside changed it (opening
    or calling SVT-AV1 raises it to real-time)."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        yield
    finally:
        if (os.sched_getscheduler(0), os.sched_getparam(0)) != (policy, param):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, policy, param)


def _muxer_takes(fmt: str, add: Callable[[Any], Any]) -> bool:
    """Whether FFmpeg's ``fmt`` muxer writes a header for the stream ``add`` puts into an empty
    container: what a container holds, asked of the muxer itself. PyAV's list of a container's
    codecs (``supported_codecs``) leaves out some it holds (all audio but MP2 in MPEG-TS; Opus
    and Vorbis in Ogg) and names some whose header then fails (Opus in .mov; H.264 is not
    refused by an .ogv file until its header is written)."""
    trial = av.open(io.BytesIO(), "w", format=fmt)
    try:
        with _scheduling_kept():
            add(trial)
            trial.start_encoding()
        return True
    except _EncoderUnusable:
        return True  # not the container's verdict: the encoder's own error comes when it runs
    except (av.FFmpegError, ValueError, KeyError, TypeError):
        return False
    finally:
        with contextlib.suppress(Exception):
            trial.close()


def _trial_aac(container: Any) -> Any:
    return container.add_stream("aac", rate=48000)


class _EncoderUnusable(Exception):
    """A trial's encoder did not open (a hardware encoder without its device): says nothing of
    the container."""


def _trial_video(codec: str, rate: Fraction) -> Callable[[Any], Any]:
    def add(container: Any) -> Any:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        if codec == "libx265":
            stream.options = {"x265-params": "log-level=error"}
        try:
            stream.codec_context.open()
        except (av.FFmpegError, ValueError) as err:
            raise _EncoderUnusable(codec) from err
        return stream

    return add


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


def _encoder_formats(codec: str) -> list[str]:
    """The pixel formats this build's ``codec`` encoder takes, in its order ([] if unknown)."""
    try:
        return [f.name for f in av.codec.Codec(codec, "w").video_formats or ()]
    except (av.FFmpegError, ValueError, KeyError):
        return []


def _is_plain_colour(pix_fmt: str) -> bool:
    """Three colour components, no alpha, no hardware surface (cuda, vaapi: no components)."""
    try:
        return len(av.VideoFormat(pix_fmt).components) == 3
    except (ValueError, TypeError):
        return False


def _auto_pix_fmt(codec: str, info: VideoInfo) -> str:
    """``encode.pix_fmt: auto``: 4:2:0 at the source's depth, 8 or 10 bits (``yuv420p``, or
    ``yuv420p10le`` for a source of more than 8 bits a sample). For an encoder that takes
    neither (ProRes and DNxHR take 4:2:2 and 4:4:4 only; NVENC's 10 bits are ``p010le``): the
    source's own format where it takes that, else the one of its formats nearest the source's
    depth, the least subsampled last. A source's depth the encoder cannot keep is warned of."""
    deep = info.bit_depth > 8
    formats = _encoder_formats(codec)
    preferred = "yuv420p10le" if deep else "yuv420p"
    if not formats or preferred in formats:
        return preferred
    if info.pix_fmt in formats and _is_plain_colour(info.pix_fmt):
        return info.pix_fmt
    colour = [f for f in formats if _is_plain_colour(f)] or formats
    want = 10 if deep else 8

    def nearness(name: str) -> tuple[bool, int, bool, int]:
        bits = bits_per_sample(name)
        fmt = av.VideoFormat(name, 64, 64)
        return bits < want, abs(bits - want), fmt.is_rgb, fmt.chroma_width() * fmt.chroma_height()

    pick = min(colour, key=nearness)
    if deep and bits_per_sample(pick) < want:
        log.warning(
            "the source has %d bits a sample but %s cannot encode 10 bits: writing 8 bits "
            "(smooth gradients may band); set encode.codec to libx264 or libx265",
            info.bit_depth,
            codec,
        )
    return pick


def for_review(encode: EncodeConfig) -> EncodeConfig:
    """The encoding of a picture drawn in 8 bits (a preview, a review video): ``pix_fmt: auto``
    means ``yuv420p`` there even for a 10-bit source, which plays everywhere (H.264 at 10 bits
    does not play in Apple's players)."""
    if encode.pix_fmt != "auto":
        return encode
    return dataclasses.replace(encode, pix_fmt="yuv420p")


class _CopiedTrack:
    """One source audio or subtitle stream and its output stream (stream copy, or re-encoded:
    audio to AAC, text subtitles to the container's text format)."""

    def __init__(self, src: Any, out: Any, reencode: bool) -> None:
        self.src = src
        self.out = out
        self.reencode = reencode
        self.packets_written = 0
        # The payload of an empty cue that the MP4 muxer inserts between mov_text cues (and the
        # demuxer reads back): copied, it would be written beside the muxer's own.
        mov_text = getattr(src.codec_context, "name", None) == "mov_text"
        self.blank = b"\x00\x00" if mov_text else None


class VideoWriter:
    """Encode frames to a video file (or a PNG folder) atomically, keeping timing, audio, metadata.

    Frames are encoded at their own pts in the source's time base (variable frame rate is kept).
    Audio streams of ``source`` are stream-copied packet for packet (``encode.audio == "copy"``),
    interleaved with the video as its timestamps advance; a codec the output container cannot hold
    is re-encoded (AAC where possible) with a warning. Subtitle streams are stream-copied too
    (``encode.subtitles == "copy"``) where the container holds their codec (SRT, ASS and WebVTT
    in .mkv, mov_text in .mp4 / .mov); text subtitles it cannot hold are converted to one it can
    (``_TEXT_SUBTITLES``), others (DVD and Blu-ray pictures) left out with a warning. Chapters
    are copied. Output goes to a temporary file beside the target, renamed on :meth:`close`;
    :meth:`abort` (or leaving a ``with`` block by an exception) removes it.

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
        self._codec = ""
        self._tracks: list[_CopiedTrack] = []
        self._source_packets: Iterator[Any] | None = None
        self._pending: Any = None
        self._last_pts: int | None = None
        self._durations: dict[int, int] = {}
        self._done = False
        self._names: list[str] = []  # a PNG folder's file names, where they follow the source's
        self._check_target()
        for stale in remove_stale_partials(self.path):
            log.info("removed %s, left by a run that was killed", stale)
        try:
            if self._is_sequence:
                self._tmp = Path(
                    tempfile.mkdtemp(prefix=partial_prefix(self.path), dir=self.path.parent)
                )
                if self.info.is_image_sequence:  # a folder of frames in, a folder out
                    self._names = _frame_names(self.info.path)
            else:
                self._open_video()
        except OSError as err:
            self.abort()
            raise _disk_error(self.path, err) from err
        except BaseException:
            self.abort()
            raise

    def _frame_name(self, i: int) -> str:
        return self._names[i] if i < len(self._names) else f"{i:05d}.png"

    # -- setup

    def _check_target(self) -> None:
        check_output(
            self.path,
            inputs=(self.info.path, self.source),
            kind="folder" if self._is_sequence else "file",
            overwrite=self.overwrite,
        )
        suffix = self.path.suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            raise EncodeError(
                f"output '{self.path}' is a single image name: expected a video file "
                f"({', '.join(sorted(VIDEO_EXTENSIONS))}) or a folder for a PNG sequence; "
                "rename it (for one still image: lama-video image IMAGE --mask MASK -o OUT.png)"
            )
        if self._is_sequence and not self.path.exists() and suffix in _ffmpeg_suffixes():
            # A name such as out.gif, out.ogg or out.mpg would otherwise become a folder of
            # PNG frames under that name.
            raise EncodeError(
                f"output '{self.path}' ends in {suffix}, a format lama-video does not write: "
                f"expected a video file ({', '.join(sorted(VIDEO_EXTENSIONS))}) or a folder for "
                "a PNG sequence (a name without a media suffix); write an .mp4 or .mkv and "
                "convert it if you need that format"
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
            self._copy_source_streams()

    def _stream_the_container_holds(
        self, codec: str, rate: Fraction, err: Exception, by_default: bool
    ) -> tuple[Any, str]:
        """The video stream where ``codec`` was refused: an encoder this build lacks is an
        error; one the container cannot hold (H.264 in a .webm file) gives way, if it was not
        asked for (``by_default``), to the first of ``_FALLBACK_CODECS`` the container takes, and
        is otherwise an error that names those."""
        if codec not in av.codecs_available:
            raise EncodeError(
                f"video encoder '{codec}' is not available: expected an FFmpeg encoder "
                "this PyAV build has (e.g. libx264, libx265, libvpx-vp9); set encode.codec"
            ) from err
        fits = [
            c for c in _FALLBACK_CODECS if c in av.codecs_available and self._holds_video(c, rate)
        ]
        if by_default:
            for other in fits:
                try:
                    stream = self._container.add_stream(other, rate=rate)
                except (av.FFmpegError, ValueError, KeyError):
                    continue
                log.info("%s cannot hold %s video: encoding %s", self.path.suffix, codec, other)
                return stream, other
        raise EncodeError(
            f"a {self.path.suffix} file cannot hold {codec} video: expected one of "
            f"{', '.join(fits) or 'the codecs of another container'}; set encode.codec "
            "(--codec) or write an .mp4 or .mkv"
        ) from err

    def _holds_video(self, codec: str, rate: Fraction) -> bool:
        return _muxer_takes(self._container.format.name, _trial_video(codec, rate))

    def _add_video_stream(self) -> None:
        cfg = self.encode_config
        info = self.info
        rate = info.frame_rate or (1 / info.time_base if info.is_image_sequence else Fraction(25))
        codec = cfg.codec
        by_default = codec == "auto"
        if by_default:
            # H.264; for a 10-bit source (HDR phone footage is HEVC) HEVC Main 10, which keeps
            # its depth and plays in Apple's players (they refuse H.264 at 10 bits).
            codec = "libx264"
            deep = cfg.pix_fmt == "auto" and info.bit_depth > 8
            if deep and "libx265" in av.codecs_available:
                codec = "libx265"
                log.info("a %d-bit source: encoding HEVC (libx265) at 10 bits", info.bit_depth)
        try:
            if codec in av.codecs_available and not self._holds_video(codec, rate):
                raise ValueError(f"the {self._container.format.name} muxer refuses it")
            stream = self._container.add_stream(codec, rate=rate)
        except (av.FFmpegError, ValueError, KeyError) as err:
            stream, codec = self._stream_the_container_holds(codec, rate, err, by_default)
        pix_fmt = _auto_pix_fmt(codec, info) if cfg.pix_fmt == "auto" else cfg.pix_fmt
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
        hevc = stream.codec_context.codec.canonical_name == "hevc"  # libx265, hevc_nvenc, ...
        if hevc and self.path.suffix.lower() in {".mp4", ".m4v", ".mov"}:
            # FFmpeg tags HEVC in MP4 as hev1, which Apple's players refuse; hvc1 plays there
            # and everywhere else.
            stream.codec_tag = "hvc1"
        stream.time_base = info.time_base
        cc = stream.codec_context
        cc.time_base = info.time_base
        if not info.is_image_sequence:
            cc.color_primaries = info.color.primaries
            cc.color_trc = info.color.transfer
            cc.colorspace = info.color.matrix
            cc.color_range = info.color.range
        if info.sample_aspect is not None:  # anamorphic pixels are shown as wide as before
            cc.sample_aspect_ratio = info.sample_aspect
        options: dict[str, str] = {}
        wanted = _RATE_OPTIONS.get(codec, ())
        if "crf" in wanted:
            options["crf"] = str(cfg.crf)
            if codec == "libvpx-vp9":
                options["b"] = "0"  # constant quality mode of libvpx needs a zero bitrate target
            elif codec == "libvpx":
                # VP8 has no constant quality mode: its CRF is a constrained quality under this
                # ceiling (with none, it aims at 256 kbit/s: 31.5 dB where CRF 18 gives 39.8).
                options["b"] = "100M"
        if "preset" in wanted:
            options["preset"] = cfg.preset
        if codec == "libx265":
            params = ["log-level=error"]  # x265 prints its settings otherwise
            # HDR10's static metadata goes on (players and TVs tone-map by it)
            if info.mastering_display:
                params.append(f"master-display={info.mastering_display}")
            if info.content_light:
                params.append(f"max-cll={info.content_light}")
            options["x265-params"] = ":".join(params)
        elif (info.mastering_display or info.content_light) and bits_per_sample(pix_fmt) > 8:
            # (an 8-bit output, such as a review video, is no HDR10 to begin with)
            log.warning(
                "%s does not write HDR10's mastering display and light levels: the output "
                "lacks them (libx265, the default for a 10-bit source, keeps them)",
                codec,
            )
        if codec == "dnxhd":
            # DNxHR: any frame size (DNxHD's own profiles take a few broadcast sizes and rates
            # only); HQX keeps 10 bits.
            options["profile"] = "dnxhr_hqx" if bits_per_sample(pix_fmt) > 8 else "dnxhr_hq"
        if codec in _X264:
            # Frame threads (x264's own default; PyAV opens encoders with slice threads). Its
            # macroblock-tree rate control does not give the same bytes twice when its threads
            # are scheduled differently (6 runs of a 854x480 clip on a busy machine: 6 different
            # files with slice or frame threads, one without it), so it is off unless
            # ``reproducible`` is False. Measured on that clip at CRF 18: 1 % smaller and
            # 0.02 dB better than PyAV's defaults, encoding 25 % faster; with the macroblock
            # tree, 0.3 dB better still.
            cc.thread_type = "FRAME"
            params = ["mbtree=0"] if cfg.reproducible else []
            if info.field_order in ("tff", "bff"):
                # Interlaced footage stays interlaced (field coding, and flagged so that players
                # deinterlace it; written as progressive, its moving edges show combs).
                params += ["interlaced=1", f"{info.field_order}=1"]
            if params:
                options["x264-params"] = ":".join(params)
        elif info.field_order in ("tff", "bff"):
            log.warning(
                "the source is interlaced (%s) but %s is written progressive: players will not "
                "deinterlace it; use libx264 (the default) to keep the fields",
                info.field_order,
                codec,
            )
        stream.options = options
        self._stream = stream
        self._codec = codec
        self._pix_fmt = pix_fmt
        # A source of more than 8 bits a sample is written from its 16-bit frames where the
        # output keeps more than 8 bits (Frame.deep); from the 8-bit ones otherwise.
        self._deep = info.bit_depth > 8 and bits_per_sample(pix_fmt) > 8

    def _copy_source_streams(self) -> None:
        """Copy the source's container and video tags, and add its audio and subtitle streams."""
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
        self._add_audio(src)
        self._add_subtitles(src)
        self._copy_chapters(src)
        if self._tracks:
            self._source_packets = src.demux(*[t.src for t in self._tracks])

    def _copy_chapters(self, src: Any) -> None:
        """The source's chapters (title and times), where the output container keeps them."""
        try:
            chapters = src.chapters()
            if chapters:
                self._container.set_chapters(chapters)
        except (av.FFmpegError, ValueError, TypeError) as err:
            log.warning("%s: chapters not copied: %s", self.source, err)

    def _add_audio(self, src: Any) -> None:
        mode = self.encode_config.audio
        if mode == "none":
            return
        fmt = self._container.format.name
        target: str | None = None
        for a in src.streams.audio:
            names = {a.codec_context.name, a.codec_context.codec.canonical_name}
            reencode = mode == "aac" or not self._holds_audio(a, names)
            if reencode:
                if target is None:
                    target = "aac" if _muxer_takes(fmt, _trial_aac) else None
                    target = target or self._container.default_audio_codec
                codec = target
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
            self._tracks.append(_CopiedTrack(a, out, reencode))

    def _holds_audio(self, stream: Any, names: set[str]) -> bool:
        """Whether the output container holds the source's audio ``stream`` as it is."""
        fmt = self._container.format.name
        if fmt == "mpegts" and not names & _TS_AUDIO:
            return False
        return _muxer_takes(fmt, lambda c: c.add_stream_from_template(stream))

    def _add_subtitles(self, src: Any) -> None:
        if self.encode_config.subtitles == "none":
            return
        supported = self._container.supported_codecs
        target = next((c for c in _TEXT_SUBTITLES if c in supported), None)
        for s in src.streams.subtitles:
            try:
                names = {s.codec_context.name, s.codec_context.codec.canonical_name}
                text = bool(s.codec_context.codec.text_sub)
            except (AttributeError, ValueError, av.FFmpegError):  # no codec this build knows
                names, text = set(), False
            if names & supported:
                out = self._container.add_stream_from_template(s)
                converted = False
            elif target is not None and text:
                log.info(
                    "%s cannot hold %s subtitles (stream %d): converting them to %s",
                    self.path.suffix,
                    s.codec_context.name,
                    s.index,
                    target,
                )
                out = self._container.add_stream(target)
                out.codec_context.subtitle_header = _ASS_HEADER
                out.time_base = s.time_base
                converted = True
            else:
                log.warning(
                    "%s cannot hold subtitle stream %d (%s): left out (text subtitles are kept: "
                    "SRT, ASS and WebVTT in .mkv, mov_text in .mp4 / .mov, WebVTT in .webm)",
                    self.path.suffix,
                    s.index,
                    ", ".join(sorted(names)) or "unknown codec",
                )
                continue
            _copy_tags(dict(s.metadata), out.metadata)
            self._tracks.append(_CopiedTrack(s, out, reencode=converted))

    # -- audio and subtitle interleaving

    def _next_source_packet(self) -> Any:
        if self._pending is None and self._source_packets is not None:
            try:
                self._pending = next(self._source_packets)
            except StopIteration:
                self._source_packets = None
            except av.FFmpegError as err:
                # NOTE: EOFError is an FFmpegError too; either way the source's streams end here.
                log.warning("%s: audio/subtitle demux stopped early: %s", self.source, err)
                self._source_packets = None
        return self._pending

    def _pump_source(self, until_s: float | None) -> None:
        """Mux source audio and subtitle packets whose time is <= ``until_s`` (all remaining ones
        if None)."""
        while (pkt := self._next_source_packet()) is not None:
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            if until_s is not None and ts is not None and float(ts * pkt.time_base) > until_s:
                return
            self._pending = None
            track = next(t for t in self._tracks if t.src.index == pkt.stream.index)
            if track.reencode:
                if pkt.stream.type == "subtitle":
                    self._convert_subtitle(track, pkt)
                else:
                    self._reencode_audio(track, pkt)
                continue
            if pkt.dts is None:
                if pkt.pts is None or pkt.stream.type != "subtitle":
                    continue  # flush packet of the demuxer: carries no data
                pkt.dts = pkt.pts  # a subtitle packet stamped with its pts only
            if track.blank is not None and bytes(pkt) == track.blank:
                continue  # a gap between cues: the muxer writes its own from the cues' durations
            pkt.stream = track.out
            self._mux(pkt)
            track.packets_written += 1

    def _convert_subtitle(self, track: _CopiedTrack, pkt: Any) -> None:
        """Decode one text subtitle packet and encode each of its cues in the output's format,
        at the packet's time and for its duration."""
        if pkt.pts is None:
            return
        try:
            cues = pkt.decode()
        except av.FFmpegError as err:
            log.warning("%s: undecodable subtitle packet skipped: %s", self.source, err)
            return
        for cue in cues:
            ass = getattr(cue, "ass", None)
            if not ass:  # an empty cue (the gap between two): the muxer marks gaps itself
                continue
            duration = int(pkt.duration or 0)
            sub = SubtitleSet.create(ass, 0, duration, int(pkt.pts))
            try:
                out_pkt = track.out.codec_context.encode_subtitle(sub)
            except av.FFmpegError as err:
                log.warning("%s: subtitle cue not converted, skipped: %s", self.source, err)
                continue
            out_pkt.stream, out_pkt.time_base = track.out, pkt.time_base
            out_pkt.pts = out_pkt.dts = pkt.pts
            out_pkt.duration = duration
            self._mux(out_pkt)
            track.packets_written += 1

    def _reencode_audio(self, track: _CopiedTrack, pkt: Any) -> None:
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
        deep: NDArray[np.uint16] | None = None
        if isinstance(frame, Frame):
            rgb, pts, duration, deep = frame.rgb, frame.pts, frame.duration, frame.deep
        else:
            rgb = frame
        rgb = _check_rgb(rgb)
        if deep is not None and deep.shape != rgb.shape:
            raise EncodeError(
                f"frame {self.frames_written}'s 16-bit picture is {deep.shape}, its 8-bit one "
                f"{rgb.shape}: expected the same size; drop Frame.deep when replacing rgb"
            )
        if rgb.shape[:2] != (self.info.height, self.info.width):
            raise EncodeError(
                f"frame {self.frames_written} is {rgb.shape[1]}x{rgb.shape[0]}: expected "
                f"{self.info.width}x{self.info.height} (the source's upright size); resize it"
            )
        if self._is_sequence:
            assert self._tmp is not None
            try:
                png = self._tmp / self._frame_name(self.frames_written)
                if deep is not None:
                    write_png16(png, deep)  # lossless at the source's depth
                else:
                    write_png(png, rgb)
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
        if deep is not None and self._deep:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(deep), format="rgb48le")
        else:
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
            packets = self._encode(vf)
        except av.FFmpegError as err:
            raise EncodeError(
                f"encoder '{self._codec}' refused frame {self.frames_written} "
                f"({err}): "
                "expected valid settings; check encode.codec/pix_fmt/preset"
            ) from err
        self._mux_video(packets)
        self.frames_written += 1

    def _encode(self, frame: Any) -> list[Any]:
        """``self._stream.encode(frame)``, with the calling thread's scheduling put back as it
        was where the encoder changed it (SVT-AV1 raises it to real-time)."""
        if self._codec != "libsvtav1":
            return list(self._stream.encode(frame))
        with _scheduling_kept():
            return list(self._stream.encode(frame))

    def _mux_video(self, packets: list[Any]) -> None:
        for pkt in packets:
            # Encoders derive packet durations from the nominal frame rate; the stored duration of
            # each frame is what keeps a variable-frame-rate video's last frame (and length) exact.
            if pkt.pts is not None and (d := self._durations.pop(pkt.pts, None)):
                pkt.duration = d
            if self._tracks and pkt.dts is not None:
                self._pump_source(float(pkt.dts * pkt.time_base))
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
                    self._mux_video(self._encode(None))
                except av.FFmpegError as err:
                    raise EncodeError(f"encoder flush failed for '{self.path}': {err}") from err
                self._pump_source(None)
                for track in self._tracks:
                    if track.reencode and track.out.type == "audio":  # subtitles keep nothing back
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
