"""What the video package hands around: stream facts, frames, and the file suffixes it knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

#: Suffixes read as single images / image-sequence members (lower case).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
#: Suffixes written as a video container; any other output name is written as a PNG folder.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".ogv"}
)
#: Suffixes of recordings that are read but not written (camera and broadcast formats: MXF,
#: MPEG-PS, DV, WMV, 3GP...): a batch folder is searched for these too, and their cleaned
#: version is written in another container (:data:`OUTPUT_FOR_READ_ONLY`).
READ_ONLY_EXTENSIONS = frozenset(
    {".mxf", ".mpg", ".mpeg", ".vob", ".m2t", ".mod", ".tod", ".dv", ".wmv", ".asf", ".3gp", ".3g2"}
    | {".f4v", ".nut", ".ogg", ".y4m"}
)
#: The container a read-only recording's output is written in (professional formats: .mov,
#: which holds ProRes, DNxHR and PCM audio; the others: .mp4); see :data:`READ_ONLY_EXTENSIONS`.
OUTPUT_FOR_READ_ONLY = {".mxf": ".mov", ".dv": ".mov"}
DEFAULT_SEQUENCE_RATE = Fraction(25)


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
    bit_depth: int = 8  # bits a sample of the source (10 for HDR phone footage)
    # width:height of a pixel as shown, when not square (anamorphic DV, HDV, DVD); upright
    sample_aspect: Fraction | None = None
    audio_codecs: tuple[str, ...] = ()  # codec name of every audio stream, in stream order
    # "tff" / "bff": interlaced, top or bottom field shown first (broadcast, DV, HDV); else
    # "progressive" (also where the container does not say)
    field_order: str = "progressive"
    # HDR10's static metadata (SMPTE ST 2086 mastering display, CTA-861.3 light levels), as
    # x265 and the HEVC SEI write them: "G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)" in 0.00002 and
    # 0.0001 cd/m2 units, and "MaxCLL,MaxFALL" in cd/m2; "" where the source has none
    mastering_display: str = ""
    content_light: str = ""


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
        deep: for a source of more than 8 bits a sample (10-bit HDR phone footage), the same
            picture as (H, W, 3) uint16 RGB (0-65535), upright; ``rgb`` is it rounded to 8
            bits. The engines work on ``rgb``; the writer encodes ``deep`` (the fill put into
            it) where the output keeps the depth. None otherwise; a frame whose ``rgb`` is
            replaced must drop it.
    """

    index: int
    pts: int | None
    time_base: Fraction
    rgb: NDArray[np.uint8]
    duration: int | None = None
    deep: NDArray[np.uint16] | None = None
