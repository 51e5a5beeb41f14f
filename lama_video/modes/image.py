"""Image mode: inpaint still images, one at a time or a folder in LaMa's own prediction layout.

Folder layout (LaMa's ``saicinpainting/evaluation/data.py:InpaintingDataset`` and
``bin/predict.py``): masks are the files matching ``**/*mask*.png`` under the input folder; the
image of mask ``dir/name_mask001.png`` is ``dir/name`` + ``img_suffix``
(``mask.rsplit('_mask', 1)[0]``); the result is written to ``<outdir>/dir/name_mask001.png``
(the mask's relative path, ``.png``).

Images are read as RGB uint8 (alpha dropped, 16-bit scaled to 8-bit, grey expanded to RGB), masks
with :func:`lama_video.masks.read_mask_image`; a mask pixel is a hole when it is above the
threshold (``masks.threshold``, auto = ``> 0`` for lossless files, as LaMa). Holes are grown by
``dilate_px`` and the fill is composited with a ``feather_px`` seam inside the dilation ring; with
``dilate_px = 0`` the seam is hard, which reproduces LaMa's own output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.composite import composite
from lama_video.config import MaskConfig
from lama_video.engines import ImageEngine
from lama_video.errors import EncodeError, MaskError, VideoOpenError
from lama_video.fsutil import write_atomic
from lama_video.masks import (
    LOSSY_IMAGE_EXTENSIONS,
    auto_threshold,
    binarize,
    dilate,
    read_mask_image,
)
from lama_video.outputs import check_output as check_paths
from lama_video.video import read_image

log = logging.getLogger(__name__)

WRITABLE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImagePair:
    """One job of the folder mode: ``image`` + ``mask`` -> ``output``."""

    image: Path
    mask: Path
    output: Path


def write_image(path: str | os.PathLike[str], rgb: NDArray[np.uint8]) -> None:
    """Write (H, W, 3) uint8 RGB atomically (a temporary file beside ``path``, then renamed).

    The format follows the suffix (PNG, JPEG, BMP, TIFF, WebP); parent folders are created.

    Raises:
        EncodeError: unsupported suffix, or the file cannot be written.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in WRITABLE_EXTENSIONS:
        raise EncodeError(
            f"output {str(p)!r} has suffix {p.suffix!r}; expected one of "
            f"{', '.join(WRITABLE_EXTENSIONS)}"
        )
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 raises rather than returning False for these formats
        raise EncodeError(f"OpenCV could not encode {str(p)!r} as {ext}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(p, buf.tobytes())
    except OSError as err:
        raise EncodeError(
            f"cannot write {str(p)!r} ({err.strerror or err}); check that the folder is writable"
        ) from err


def find_pairs(
    indir: str | os.PathLike[str], outdir: str | os.PathLike[str], *, img_suffix: str = ".png"
) -> list[ImagePair]:
    """LaMa's folder rule: every ``**/*mask*.png`` under ``indir`` with its image and output path.

    Raises:
        VideoOpenError: ``indir`` is not a folder, holds no masks, or a mask's image is missing.
    """
    root = Path(indir)
    if not root.is_dir():
        raise VideoOpenError(f"input folder {str(root)!r} does not exist or is not a folder")
    masks = sorted(p for p in root.rglob("*mask*.png") if p.is_file())
    if not masks:
        raise VideoOpenError(
            f"no image/mask pairs found in {str(root)!r}: expected files like name{img_suffix} + "
            "name_mask.png (masks are the *mask*.png files, as in LaMa's predict.py)"
        )
    pairs = []
    for m in masks:
        rel = m.relative_to(root)
        image = root / (str(rel).rsplit("_mask", 1)[0] + img_suffix)
        if not image.is_file():
            raise VideoOpenError(
                f"mask {str(m)!r} has no image: expected {str(image)!r} (the name before '_mask' + "
                f"{img_suffix!r}; change the suffix with --img-suffix)"
            )
        pairs.append(ImagePair(image, m, Path(outdir) / rel.with_suffix(".png")))
    return pairs


def inpaint_image(
    image: NDArray[np.uint8],
    mask: NDArray[np.uint8] | NDArray[np.bool_],
    engine: ImageEngine,
    masks_cfg: MaskConfig | None = None,
    *,
    lossy_mask: bool = False,
) -> NDArray[np.uint8]:
    """Remove the masked region of one image.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) uint8 (binarised with ``masks_cfg.threshold``; auto = ``> 0`` unless
            ``lossy_mask``, then ``> 127``) or bool (True = hole).
        engine: the image engine that fills the holes.
        masks_cfg: dilation, feathering and threshold (default :class:`MaskConfig`).
        lossy_mask: the mask came from a lossy file (JPEG, WebP).

    Returns:
        (H, W, 3) uint8 RGB, equal to ``image`` outside the dilated hole.

    Raises:
        MaskError: the mask's size differs from the image's.
    """
    cfg = masks_cfg or MaskConfig()
    h, w = image.shape[:2]
    if mask.shape != (h, w):
        mh, mw = mask.shape[:2]
        raise MaskError(
            f"mask is {mw}x{mh} but the image is {w}x{h}; expected a mask of the image's size"
        )
    core = (
        cast(NDArray[np.bool_], mask)
        if mask.dtype == np.bool_
        else binarize(
            cast(NDArray[np.uint8], mask), auto_threshold(cfg.threshold, lossy=lossy_mask)
        )
    )
    if not core.any():
        log.info("the mask has no hole; the image is returned unchanged")
        return image.copy()
    hole = dilate(core, cfg.dilate_px)
    filled = engine.inpaint(image[None], hole[None])[0]
    feather = cfg.feather_px if cfg.dilate_px > 0 else 0
    return composite(image, filled, hole, core, feather)


def check_output(out: Path, inputs: tuple[Path, ...], overwrite: bool) -> None:
    """EncodeError if ``out`` is one of ``inputs``, a folder, or exists (and not overwrite)."""
    check_paths(out, inputs=inputs, kind="file", overwrite=overwrite)


def _process(pair: ImagePair, engine: ImageEngine, cfg: MaskConfig) -> None:
    image = read_image(pair.image)
    mask = read_mask_image(pair.mask)
    try:
        result = inpaint_image(
            image, mask, engine, cfg, lossy_mask=pair.mask.suffix.lower() in LOSSY_IMAGE_EXTENSIONS
        )
    except MaskError as err:
        raise MaskError(f"{pair.mask}: {err}") from err
    write_image(pair.output, result)


def single_output_path(image: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """``output``, or ``output/<image stem>.png`` when ``output`` is an existing folder."""
    out = Path(output)
    return out / f"{Path(image).stem}.png" if out.is_dir() else out


def run_image(
    image: str | os.PathLike[str],
    mask: str | os.PathLike[str],
    output: str | os.PathLike[str],
    engine: ImageEngine,
    masks_cfg: MaskConfig | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Inpaint one image file and write the result (see :func:`inpaint_image`).

    If ``output`` is an existing folder the result is ``output/<image stem>.png``.

    Returns:
        The written path.

    Raises:
        LamaVideoError: missing/unreadable image or mask, size mismatch, output exists (without
            ``overwrite``) or equals an input.
    """
    img_p, mask_p = Path(image), Path(mask)
    out = single_output_path(img_p, output)
    pair = ImagePair(img_p, mask_p, out)
    check_output(out, (img_p, mask_p), overwrite)
    _process(pair, engine, masks_cfg or MaskConfig())
    return out


def run_folder(
    indir: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    engine: ImageEngine,
    masks_cfg: MaskConfig | None = None,
    *,
    img_suffix: str = ".png",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[ImagePair]:
    """Inpaint every image/mask pair of ``indir`` in LaMa's layout (see the module docstring).

    All outputs are checked before the first is written, so an existing output (without
    ``overwrite``) stops the run before any work.

    Returns:
        The processed pairs, in order.

    Raises:
        LamaVideoError: no pairs, a missing/unreadable image or mask, a size mismatch, an output
            that exists or equals an input.
    """
    pairs = find_pairs(indir, outdir, img_suffix=img_suffix)
    for pair in pairs:
        check_output(pair.output, (pair.image, pair.mask), overwrite)
    cfg = masks_cfg or MaskConfig()
    for pair in pairs:
        _process(pair, engine, cfg)
        if progress is not None:
            progress(1)
    return pairs
