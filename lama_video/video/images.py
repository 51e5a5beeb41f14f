"""Still images and frame folders: the one image reader, PNG writing, frame-folder listing.

Images are decoded with OpenCV (libjpeg/libpng, as LaMa's PIL reading does) and turned into
(H, W, 3) uint8 RGB: alpha dropped, greyscale expanded, 16-bit and float images scaled to 8 bits.
"""

from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
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


def read_image(path: str | os.PathLike[str]) -> NDArray[np.uint8]:
    """Read an image file as (H, W, 3) uint8 RGB.

    Alpha is dropped, 16-bit (and float) images are scaled to 8-bit, greyscale is expanded to RGB.

    Raises:
        VideoOpenError: the file is missing or not a readable image.
    """
    p = Path(path)
    if not p.is_file():
        raise VideoOpenError(
            f"image {str(p)!r} does not exist; expected an image file (PNG, JPEG...)"
        )
    data = np.fromfile(str(p), dtype=np.uint8)
    # Any depth: 8 or 16 bit, float (converted to uint8 below).
    img: NDArray[Any] | None = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise VideoOpenError(
            f"cannot read image {str(p)!r}: not a readable image; expected a PNG, JPEG, BMP, "
            "TIFF or WebP file"
        )
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)  # the high byte: exact for 8-bit data stored as 16-bit
    elif img.dtype != np.uint8:
        scale = 255.0 if img.dtype.kind == "f" else 1.0
        img = np.clip(img.astype(np.float64) * scale, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 2:  # grey + alpha
        return np.repeat(img[..., :1], 3, axis=2)
    return cast(
        NDArray[np.uint8], cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_BGR2RGB)
    )


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
