"""Still images and frame folders: the one image reader, PNG writing, frame-folder listing.

Images are decoded with PyAV, as video frames are, into (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from lama_video.errors import VideoOpenError
from lama_video.video.types import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
)

log = logging.getLogger(__name__)

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


def _clockwise_degrees(display_rotation: float) -> int:
    """PyAV ``frame.rotation`` (counter-clockwise display-matrix angle) -> clockwise turn."""
    cw = round(-display_rotation) % 360
    snapped = round(cw / 90.0) * 90 % 360
    if snapped != cw:
        log.warning("rotation %s deg is not a multiple of 90; using %d", display_rotation, snapped)
    return snapped


def _upright(rgb: NDArray[Any], rotation_cw: int) -> NDArray[Any]:
    if rotation_cw == 0:
        return rgb
    # np.rot90 turns counter-clockwise for positive k.
    return np.ascontiguousarray(np.rot90(rgb, k=-(rotation_cw // 90)))


def read_image(path: str | os.PathLike[str]) -> NDArray[np.uint8]:
    """Decode one still image to (H, W, 3) uint8 RGB: the one image reader of the package.

    Decoded with PyAV, like video frames, so a folder of JPEG frames and an MJPEG video give the
    same pixels; alpha is dropped, greyscale replicated, 16-bit images reduced to 8 bits, and the
    picture turned upright as its EXIF orientation says (a phone's portrait photo is stored
    sideways), as viewers and editors show it and as masks are painted on it.

    Raises:
        VideoOpenError: the file is missing or not a decodable image.
    """
    return read_image_deep(path)[0]


def read_image_deep(
    path: str | os.PathLike[str],
) -> tuple[NDArray[np.uint8], NDArray[np.uint16] | None]:
    """:func:`read_image`, and for an image of more than 8 bits a sample (a 16-bit PNG from a
    compositor) the same picture as (H, W, 3) uint16 RGB too (None otherwise), as
    :attr:`Frame.deep` holds it.

    Raises:
        VideoOpenError: the file is missing or not a decodable image.
    """
    p = Path(path)
    if not p.is_file():
        raise VideoOpenError(
            f"image {str(p)!r} does not exist; expected an image file (PNG, JPEG...)"
        )
    try:
        with av.open(str(p)) as container:
            frame = next(container.decode(video=0))
            turn = _clockwise_degrees(frame.rotation)
            if any(depth in frame.format.name for depth in ("16", "48", "64")):
                # swscale's 16 -> 8 bit conversion is off by one on half the values: take the
                # high byte (exact for 8-bit data stored in 16 bits).
                wide = np.ascontiguousarray(_upright(frame.to_ndarray(format="rgb48le"), turn))
                return np.ascontiguousarray((wide >> 8).astype(np.uint8)), wide
            rgb = frame.to_ndarray(format="rgb24")
            return np.ascontiguousarray(_upright(rgb, turn)), None
    except (av.FFmpegError, StopIteration, OSError, ValueError) as err:
        raise VideoOpenError(
            f"cannot read image {str(p)!r}: not a readable image; expected a PNG, JPEG, BMP, "
            f"TIFF or WebP file ({type(err).__name__})"
        ) from err


def write_png(path: str | os.PathLike[str], rgb: NDArray[np.uint8]) -> None:
    """Write (H, W, 3) uint8 RGB losslessly as an 8-bit RGB PNG."""
    rgb = _check_rgb(rgb)
    _write_png_frame(path, av.VideoFrame.from_ndarray(rgb, format="rgb24"))


def write_png16(path: str | os.PathLike[str], rgb: NDArray[np.uint16]) -> None:
    """Write (H, W, 3) uint16 RGB losslessly as a 16-bit RGB PNG."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint16 RGB, got shape {arr.shape} dtype {arr.dtype}")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb48le")
    _write_png_frame(path, frame.reformat(format="rgb48be"))  # PNG stores big-endian samples


def _write_png_frame(path: str | os.PathLike[str], frame: av.VideoFrame) -> None:
    """Encode one frame (rgb24 or rgb48be) as a PNG file."""
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = frame.width, frame.height, frame.format.name
    ctx.time_base = Fraction(1, 25)
    data = b"".join(bytes(pkt) for pkt in [*ctx.encode(frame), *ctx.encode(None)])
    Path(path).write_bytes(data)


def _check_rgb(rgb: Any) -> NDArray[np.uint8]:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got shape {arr.shape} dtype {arr.dtype}")
    return np.ascontiguousarray(arr)
