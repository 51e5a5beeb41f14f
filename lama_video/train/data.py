"""Training data: frames from image folders and videos, random crops with generated holes, metrics.

A :class:`FrameSet` holds decoded frames in memory (subsampled to ``max_frames`` per source) and,
for a clip's own background as training data, a per-frame *object* mask: pixels that are never a
training target. :class:`CropSampler` draws batches of random crops with holes from a
:class:`~lama_video.train.masks.MaskGenerator`; every hole also covers the crop's object pixels,
so the generator is only ever asked to reproduce background it has really seen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor

from lama_video.errors import ConfigError, MaskError
from lama_video.train.masks import MaskGenerator

log = logging.getLogger(__name__)


@dataclass
class FrameSet:
    """Frames kept for training or validation.

    Attributes:
        frames: list of (H_i, W_i, 3) uint8 RGB (sizes may differ between images of a folder).
        objects: None, or one (H_i, W_i) bool per frame, True = object pixel (never a target).
        names: ``"<source>#<frame index>"`` per frame, for messages.
    """

    frames: list[NDArray[np.uint8]]
    objects: list[NDArray[np.bool_]] | None
    names: list[str]

    def __len__(self) -> int:
        return len(self.frames)

    def subset(self, indices: Sequence[int]) -> FrameSet:
        """The frames at ``indices`` (same order)."""
        return FrameSet(
            frames=[self.frames[i] for i in indices],
            objects=None if self.objects is None else [self.objects[i] for i in indices],
            names=[self.names[i] for i in indices],
        )


def _stride(n_frames: int | None, max_frames: int) -> int:
    return 1 if not n_frames or n_frames <= max_frames else math.ceil(n_frames / max_frames)


def load_frames(
    sources: Sequence[str | Path],
    *,
    mask: str | Path | None = None,
    dilate_px: int = 4,
    max_frames: int = 400,
    progress: Callable[[int], None] | None = None,
) -> FrameSet:
    """Decode training frames from image folders and/or videos.

    Folders are read image by image (sizes may differ); videos through
    :func:`lama_video.video.open_video`. Each source keeps at most ``max_frames`` frames, evenly
    spaced (every k-th frame).

    Args:
        sources: folders of images and/or video files.
        mask: object masks of the (single) source, in any form :func:`lama_video.masks.load_masks`
            reads (a folder of PNGs matched to frames, a mask video, one image); masked pixels are
            never training targets. None = every pixel is background.
        dilate_px: growth of the object masks (edges and halos are not background either).
        max_frames: frames kept per source at most.
        progress: called with 1 for every frame kept.

    Returns:
        The frames, with ``objects`` set when ``mask`` is given.

    Raises:
        ConfigError: no sources, or ``mask`` with several sources or a folder of differently
            sized images.
        VideoOpenError, MaskError: unreadable inputs or masks that do not match the frames.
    """
    from lama_video.video import list_image_files, open_video, read_image

    if not sources:
        raise ConfigError("no training data given; pass --data with a folder of images or a video")
    if mask is not None and len(sources) != 1:
        raise ConfigError(
            f"--mask was given with {len(sources)} --data sources; object masks belong to one "
            "clip, so pass exactly one --data with --mask"
        )
    frames: list[NDArray[np.uint8]] = []
    names: list[str] = []
    objects: list[NDArray[np.bool_]] | None = [] if mask is not None else None
    for source in sources:
        path = Path(source)
        kept: list[tuple[int, NDArray[np.uint8]]] = []
        if path.is_dir():
            files = list_image_files(path)
            step = _stride(len(files), max_frames)
            for i in range(0, len(files), step):
                kept.append((i, read_image(files[i])))
                if progress is not None:
                    progress(1)
            n_total = len(files)
        else:
            with open_video(path) as reader:
                step = _stride(reader.info.n_frames, max_frames)
                n_total = 0
                for frame in reader.frames():
                    n_total += 1  # decoded to the end: mask counts are checked against it
                    if frame.index % step == 0 and len(kept) < max_frames:
                        kept.append((frame.index, frame.rgb))
                        if progress is not None:
                            progress(1)
        if not kept:
            raise ConfigError(f"training source {str(path)!r} holds no frames")
        if objects is not None and mask is not None:  # objects is a list iff mask is given
            objects.extend(_object_masks(mask, kept, n_total, dilate_px))
        frames.extend(rgb for _, rgb in kept)
        names.extend(f"{path.name}#{i}" for i, _ in kept)
        log.info(
            "training source %s: kept %d of %d frames (every %d)", path, len(kept), n_total, step
        )
    return FrameSet(frames=frames, objects=objects, names=names)


def _object_masks(
    mask: str | Path, kept: list[tuple[int, NDArray[np.uint8]]], n_total: int, dilate_px: int
) -> list[NDArray[np.bool_]]:
    from lama_video import masks as mask_io

    h, w = kept[0][1].shape[:2]
    if any(rgb.shape[:2] != (h, w) for _, rgb in kept):
        raise ConfigError(
            "--mask needs frames of one size, but the --data folder holds images of several sizes; "
            "pass a video or a folder of same-sized frames"
        )
    track = mask_io.load_masks(mask, width=w, height=h, n_frames=n_total)
    wanted = {i for i, _ in kept}
    out: dict[int, NDArray[np.bool_]] = {}
    for i, m in enumerate(track.masks()):
        if i >= n_total:
            break
        if i in wanted:
            out[i] = mask_io.dilate(m, dilate_px)
    if len(out) != len(kept):
        raise MaskError(f"{track.description} has masks for {len(out)} of the {len(kept)} frames")
    return [out[i] for i, _ in kept]


def split_holdout(n_frames: int, n_val: int) -> tuple[list[int], list[int]]:
    """Evenly spaced validation frames held back from training: ``(train_indices, val_indices)``.

    Raises:
        ConfigError: fewer than ``n_val + 1`` frames.
    """
    if n_val <= 0:
        return list(range(n_frames)), []
    if n_frames < n_val + 1:
        raise ConfigError(
            f"{n_frames} training frames cannot spare {n_val} for validation; give more frames "
            "or fewer --val-frames"
        )
    val = sorted({int(x + 0.5) for x in np.linspace(0, n_frames - 1, n_val + 2)[1:-1]})
    val_set = set(val)
    return [i for i in range(n_frames) if i not in val_set], val


def _to_tensor(rgb: NDArray[np.uint8]) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


@dataclass
class Batch:
    """One training or validation batch (CPU tensors).

    Attributes:
        images: (N, 3, S, S) float32 RGB in [0, 1].
        holes: (N, 1, S, S) float32 {0, 1}, 1 = hole given to the generator (covers ``ignore``).
        ignore: (N, 1, S, S) float32 {0, 1}, 1 = object pixel (never a target), or None.
    """

    images: Tensor
    holes: Tensor
    ignore: Tensor | None

    def to(self, device: torch.device | str) -> Batch:
        """The batch on ``device``."""
        return Batch(
            self.images.to(device),
            self.holes.to(device),
            None if self.ignore is None else self.ignore.to(device),
        )


class CropSampler:
    """Random square crops with generated holes.

    Frames smaller than the crop are upscaled (bilinear; object masks nearest) so their short side
    equals it. Crops are flipped left-right with probability 1/2.

    Args:
        frames: the training frames.
        crop_px: crop side in pixels.
        masks: the hole generator (its lengths should suit ``crop_px``, see ``scale_mix``).
        rng: random source of crop positions and flips (masks use ``masks.rng``).
    """

    def __init__(
        self, frames: FrameSet, *, crop_px: int, masks: MaskGenerator, rng: np.random.Generator
    ) -> None:
        if len(frames) == 0:
            raise ConfigError("no frames to train on")
        self.crop_px = int(crop_px)
        self.masks = masks
        self.rng = rng
        self._images: list[Tensor] = []
        self._objects: list[Tensor] | None = None if frames.objects is None else []
        for i, rgb in enumerate(frames.frames):
            img = _to_tensor(rgb)
            obj = None if frames.objects is None else torch.from_numpy(frames.objects[i])[None]
            h, w = img.shape[-2:]
            if min(h, w) < self.crop_px:
                scale = self.crop_px / min(h, w)
                size = (max(s := self.crop_px, math.ceil(h * scale)), max(s, math.ceil(w * scale)))
                img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
                if obj is not None:
                    obj = F.interpolate(obj[None].float(), size=size, mode="nearest")[0] > 0.5
            self._images.append(img)
            if self._objects is not None:
                self._objects.append(obj)  # type: ignore[arg-type]

    def crop(self, index: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Random crop of frame ``index``: image, hole and object mask (or None), each (C, S, S)."""
        s = self.crop_px
        img = self._images[index]
        h, w = img.shape[-2:]
        y, x = int(self.rng.integers(h - s + 1)), int(self.rng.integers(w - s + 1))
        flip = bool(self.rng.integers(2))
        patch = img[:, y : y + s, x : x + s]
        obj = None
        if self._objects is not None:
            obj = self._objects[index][:, y : y + s, x : x + s].float()
        hole = torch.from_numpy(self.masks(s, s))[None].float()
        if obj is not None:
            hole = torch.maximum(hole, obj)
        if flip:
            patch, hole = patch.flip(-1), hole.flip(-1)
            obj = None if obj is None else obj.flip(-1)
        return patch, hole, obj

    def batch(self, size: int) -> Batch:
        """``size`` crops of uniformly drawn frames."""
        picks = self.rng.integers(len(self._images), size=int(size))
        parts = [self.crop(int(i)) for i in picks]
        ignore = None
        if self._objects is not None:
            ignore = torch.stack([p[2] for p in parts])  # type: ignore[misc]
        return Batch(torch.stack([p[0] for p in parts]), torch.stack([p[1] for p in parts]), ignore)


def hole_psnr(pred: Tensor, target: Tensor, region: Tensor) -> float:
    """PSNR (dB, peak 1) over the pixels where ``region`` is 1.

    Args:
        pred: (N, 3, H, W) in [0, 1].
        target: (N, 3, H, W) in [0, 1].
        region: (N, 1, H, W) {0, 1}.

    Returns:
        ``10 log10(1 / MSE)`` over region pixels and channels (inf when equal, nan when empty).
    """
    weight = region.expand_as(pred).float()
    n = float(weight.sum())
    if n == 0:
        return float("nan")
    mse = float(((pred.float() - target.float()) ** 2 * weight).sum()) / n
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def hole_ssim(pred: Tensor, target: Tensor, region: Tensor) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian σ=1.5, K1 0.01, K2 0.03, peak 1) over ``region``.

    The SSIM map is computed per channel on the whole image (edge padding) and averaged over
    region pixels and channels. Shapes as in :func:`hole_psnr`.
    """
    weight = region.expand_as(pred).float()
    n = float(weight.sum())
    if n == 0:
        return float("nan")
    c = pred.shape[1]
    win = _gaussian_window().to(pred.device).expand(c, 1, 11, 11)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.pad(t, (5, 5, 5, 5), mode="replicate"), win, groups=c)

    x, y = pred.float(), target.float()
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx**2
    vy = blur(y * y) - my**2
    cov = blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float((ssim * weight).sum()) / n
