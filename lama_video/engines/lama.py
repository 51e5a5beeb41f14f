"""Inpainter: LaMa on arrays (conversion, padding, crops around holes, batching, device, dtype).

The pre/post-processing is exactly the official one (``bin/predict.py`` and
``saicinpainting/evaluation`` of advimman/lama, see LAMA_REFERENCE.md (c)): the uint8 RGB image and
the mask are padded bottom/right to a multiple of 8 with numpy's ``symmetric`` (edge-repeating)
mode, any non-zero mask value is a hole, the generator sees ``cat([image * (1 - mask), mask])``,
the result is blended ``mask * pred + (1 - mask) * image``, cropped back and converted with
``clip(x * 255).astype(uint8)`` (truncation, not rounding). Pixels outside the holes are then
copied back from the input bit for bit.

Cost follows the holes, not the frame (IOPaint's ``CROP`` strategy): a frame whose longest side
exceeds ``crop_trigger_px`` is not sent whole; each group of holes is cropped with
``crop_margin_px`` of context and crops longer than ``resize_limit_px`` are downscaled for the
model, their fill upscaled back. Crops (and whole frames) of every frame of a call are grouped by
padded size and batched.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn

from lama_video.config import InpaintConfig
from lama_video.engines.base import check_batch
from lama_video.errors import ConfigError, LamaVideoError, WeightsError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

# Keyword defaults are the run config's (one place for each default).
_DEFAULTS = InpaintConfig()

PAD_MULTIPLE = 8  # LaMa's configs/prediction/default.yaml: dataset.pad_out_to_modulo
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
KIND_GENERATOR = "generator"  # input cat(img * (1 - m), m) -> raw sigmoid output
KIND_TORCHSCRIPT_BLENDED = "torchscript_blended"  # IOPaint big-lama.pt: (img, m) -> blended image


def auto_precision(device: torch.device) -> str:
    """What ``precision: auto`` runs on ``device``: bf16 autocast where the hardware runs it fast.

    CUDA GPUs with bf16 (Ampere and later) and CPUs with native bf16 instructions (AVX512-BF16
    or AMX) get bf16; everything else fp32. Without native bf16 a CPU emulates it: on this
    project's AVX-512 Xeon (no AVX512-BF16) big-lama at 512x512 took 2.6x fp32's time in bf16.
    The generator's FFTs stay in fp32 either way.
    """
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and _cpu_has_native_bf16():
        return "bf16"
    return "fp32"


_CPUINFO = "/proc/cpuinfo"  # read when torch has no CPU probes (Linux only; elsewhere: no bf16)


def _cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX (torch's own probes, else the kernel's CPU flags).

    ``LAMA_VIDEO_CPU_BF16=0`` / ``=1`` overrides the probe (the tests pin it to 0, so their
    fp32 references hold on every CPU).
    """
    forced = os.environ.get("LAMA_VIDEO_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    probes = [
        getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    if all(callable(p) for p in probes):
        return any(bool(p()) for p in probes)  # type: ignore[misc]
    try:
        with open(_CPUINFO) as fh:
            flags = next((ln for ln in fh if ln.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda[:N]`` or ``mps``.

    Raises:
        ConfigError: unknown name, or the requested accelerator is not available.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(
                "device 'mps' requested but MPS is not available; use --device auto or cpu"
            )
        return torch.device("mps")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} requested but CUDA is not available (torch {torch.__version__}); "
                "use --device auto or cpu"
            )
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) "
                "exist; use --device cuda:0"
            )
        return torch.device(name)
    raise ConfigError(f"device: got {device!r}, expected auto, cpu, cuda, cuda:N or mps")


def symmetric_pad_index(size: int, padded: int) -> NDArray[np.intp]:
    """Source index of each output position of numpy's ``np.pad(mode='symmetric')`` at the end only.

    E.g. ``size=3, padded=7`` -> ``[0, 1, 2, 2, 1, 0, 0]`` (the edge is repeated, then mirrored).
    """
    i = np.arange(padded) % (2 * size)
    return np.where(i < size, i, 2 * size - 1 - i)


def padded_size(n: int, multiple: int = PAD_MULTIPLE) -> int:
    """``n`` rounded up to a multiple of ``multiple``, and at least ``2 * multiple``.

    The minimum only affects frames under 9 px, which the official code cannot process at all: the
    generator's reflection padding at 1/8 resolution needs two pixels.
    """
    return max(-(-n // multiple) * multiple, 2 * multiple)


def pad_to_multiple(x: Tensor, multiple: int = PAD_MULTIPLE) -> Tensor:
    """Pad ``(..., H, W)`` bottom/right to :func:`padded_size` like numpy's ``symmetric`` mode."""
    h, w = x.shape[-2:]
    hp, wp = padded_size(h, multiple), padded_size(w, multiple)
    if (hp, wp) == (h, w):
        return x
    rows = torch.as_tensor(symmetric_pad_index(h, hp), device=x.device)
    cols = torch.as_tensor(symmetric_pad_index(w, wp), device=x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


@dataclass(frozen=True)
class CropBox:
    """A region ``[y0:y1, x0:x1]`` of a frame that goes through the model as one item."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


def hole_boxes(mask: NDArray[np.bool_], margin_px: int) -> list[CropBox]:
    """Boxes around the holes of ``mask``: each connected hole's bounding box grown by ``margin_px``
    (clipped to the frame), boxes that touch or overlap merged until none do.

    Args:
        mask: (H, W) bool, True = hole.
        margin_px: context kept on each side of a hole.

    Returns:
        Disjoint boxes; every hole pixel lies in exactly one, with at least ``margin_px`` of context
        on each side that the frame allows.
    """
    h, w = mask.shape
    m8 = mask.astype(np.uint8)
    if margin_px > 0:
        # Dilating by the margin first groups holes whose grown boxes would overlap anyway, so
        # thousands of specks do not become thousands of boxes; the bbox of a dilated component
        # equals the union of its holes' grown bounding boxes (clipped to the frame).
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin_px + 1, 2 * margin_px + 1))
        m8 = cast(NDArray[np.uint8], cv2.dilate(m8, kernel))
    n, _, stats, _ = cv2.connectedComponentsWithStats(m8, connectivity=8)
    boxes = [
        [
            int(s[cv2.CC_STAT_TOP]),
            int(s[cv2.CC_STAT_TOP] + s[cv2.CC_STAT_HEIGHT]),
            int(s[cv2.CC_STAT_LEFT]),
            int(s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH]),
        ]
        for s in stats[1:n]
    ]
    if margin_px == 0:
        boxes = [[max(0, b[0]), min(h, b[1]), max(0, b[2]), min(w, b[3])] for b in boxes]
    merged = True
    while merged:
        merged = False
        out: list[list[int]] = []
        for b in boxes:
            for o in out:
                # touch or overlap (half-open intervals): merge into the union box
                if b[0] <= o[1] and o[0] <= b[1] and b[2] <= o[3] and o[2] <= b[3]:
                    o[:] = [min(o[0], b[0]), max(o[1], b[1]), min(o[2], b[2]), max(o[3], b[3])]
                    merged = True
                    break
            else:
                out.append(list(b))
        boxes = out
    return [CropBox(*b) for b in sorted(boxes)]


class _InputForm(NamedTuple):
    """The dtype and memory layout the generator's inference form takes its input in."""

    dtype: torch.dtype
    memory_format: torch.memory_format


@dataclass
class _Item:
    """One model input: a (possibly resized) region of frame ``frame``."""

    frame: int
    box: CropBox
    image: NDArray[np.uint8]  # (h, w, 3) model-size RGB (the crop, or the crop downscaled)
    hole: NDArray[np.bool_]  # (h, w) model-size hole mask
    resized: bool


class Inpainter:
    """LaMa inpainting of uint8 frames (implements ``ImageEngine``; ``name = "lama"``).

    Args:
        model: a ``LoadedModel`` from :func:`lama_video.model.weights.load_model` (``.module`` and
            ``.kind``), or a bare generator ``nn.Module`` (kind ``"generator"``: input
            ``(N, 4, H, W)`` = ``cat([image * (1 - mask), mask])``, output ``(N, 3, H, W)`` in
            [0, 1]).
            An ``FFCResNetGenerator`` is run as a folded copy (its inference form: BatchNorms
            folded, channels-last on CPU and NCHW elsewhere, bf16 as a whole for ``bf16``; the
            module given is not touched) unless ``eager``; any other module is moved to
            ``device`` and put in eval mode.
        device: ``auto`` (cuda, else mps, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``auto`` (:func:`auto_precision`), ``fp32``, ``fp16`` or ``bf16`` (the
            generator keeps its FFTs in fp32; fp16, and bf16 for other modules, run under
            autocast). fp16 on CPU and bf16 on a GPU without bf16
            fall back to fp32 with a warning.
        batch_size: items (frames or crops) per forward pass; halved on CUDA out-of-memory.
        crop_trigger_px: frames whose longest side exceeds this are processed as crops around holes.
        crop_margin_px: context kept around each hole's bounding box in a crop.
        resize_limit_px: crops with a longer side are downscaled to this side for the model.
        eager: run an ``FFCResNetGenerator`` as given too (moved to ``device``, eval mode, fp16
            and bf16 under autocast): the official code's computation, for parity checks and
            speed comparisons.
    """

    name = "lama"

    def __init__(
        self,
        model: Any,
        *,
        device: str | torch.device = _DEFAULTS.device,
        precision: str = _DEFAULTS.precision,
        batch_size: int = _DEFAULTS.batch_size,
        crop_trigger_px: int = _DEFAULTS.crop_trigger_px,
        crop_margin_px: int = _DEFAULTS.crop_margin_px,
        resize_limit_px: int = _DEFAULTS.resize_limit_px,
        eager: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(
                f"precision: got {precision!r}, expected one of {', '.join(PRECISIONS)}"
            )
        for key, value, lo in (
            ("batch_size", batch_size, 1),
            ("crop_trigger_px", crop_trigger_px, 8),
            ("crop_margin_px", crop_margin_px, 0),
            ("resize_limit_px", resize_limit_px, 8),
        ):
            if int(value) != value or value < lo:
                raise ConfigError(f"{key}: got {value!r}, expected an integer >= {lo}")
        if isinstance(model, nn.Module):
            module, kind = model, KIND_GENERATOR
        elif isinstance(getattr(model, "module", None), nn.Module):
            module, kind = model.module, str(getattr(model, "kind", KIND_GENERATOR))
        else:
            raise TypeError(
                "model must be an nn.Module or a LoadedModel (.module, .kind), got "
                f"{type(model).__name__}"
            )
        if kind not in (KIND_GENERATOR, KIND_TORCHSCRIPT_BLENDED):
            raise ValueError(
                f"model kind must be {KIND_GENERATOR!r} or {KIND_TORCHSCRIPT_BLENDED!r}, "
                f"got {kind!r}"
            )
        self.device = resolve_device(device)
        self.kind = kind
        if precision == "auto":
            precision = "fp32" if kind == KIND_TORCHSCRIPT_BLENDED else auto_precision(self.device)
        self.precision = precision
        if self.kind == KIND_TORCHSCRIPT_BLENDED and precision != "fp32":
            # The traced export's FFTs are not wrapped to stay in fp32 (ours are), so it runs as
            # it was traced.
            log.warning("a TorchScript model runs in fp32 only; ignoring precision %s", precision)
            self.precision = "fp32"
        elif precision == "fp16" and self.device.type == "cpu":
            log.warning(
                "fp16 is not supported on CPU; running in fp32 (use bf16 for reduced precision)"
            )
            self.precision = "fp32"
        elif (
            precision == "bf16"
            and self.device.type == "cuda"
            and not torch.cuda.is_bf16_supported()
        ):
            # Pre-Ampere GPUs: torch's autocast would silently disable itself; say so instead.
            log.warning("this GPU does not support bf16; running in fp32 (use fp16 instead)")
            self.precision = "fp32"
        self.module, self._input_form = self._prepare(module, eager)
        # Autocast only where the module does not already run in the precision asked for.
        self._amp_dtype = (
            _DTYPES[self.precision]
            if self.precision != "fp32"
            and (self._input_form is None or self._input_form.dtype == torch.float32)
            else None
        )
        self.batch_size = int(batch_size)
        self.crop_trigger_px = int(crop_trigger_px)
        self.crop_margin_px = int(crop_margin_px)
        self.resize_limit_px = int(resize_limit_px)
        # A generator with more downsamplings needs a coarser multiple; 8 is LaMa's own.
        self.pad_multiple = math.lcm(PAD_MULTIPLE, int(getattr(module, "size_multiple", 1)))

    def __repr__(self) -> str:
        return (
            f"Inpainter(kind={self.kind!r}, device={str(self.device)!r}, "
            f"precision={self.precision!r}, "
            f"batch_size={self.batch_size})"
        )

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike[str] = _DEFAULTS.model,
        *,
        trust_checkpoint: bool = _DEFAULTS.trust_checkpoint,
        device: str | torch.device = _DEFAULTS.device,
        precision: str = _DEFAULTS.precision,
        batch_size: int = _DEFAULTS.batch_size,
        crop_trigger_px: int = _DEFAULTS.crop_trigger_px,
        crop_margin_px: int = _DEFAULTS.crop_margin_px,
        resize_limit_px: int = _DEFAULTS.resize_limit_px,
    ) -> Inpainter:
        """Load weights (a registry name looked up in the local cache, or a path) and wrap them.

        Never downloads: fetch the weights first with ``lama-video weights download``.

        Raises:
            WeightsError: the weights are missing, corrupt or untrusted.
        """
        from lama_video.model.weights import load_model

        loaded = load_model(source, trust_checkpoint=trust_checkpoint, map_location="cpu")
        return cls(
            loaded,
            device=device,
            precision=precision,
            batch_size=batch_size,
            crop_trigger_px=crop_trigger_px,
            crop_margin_px=crop_margin_px,
            resize_limit_px=resize_limit_px,
        )

    # ----------------------------------------------------------------------------------- tensors

    def _prepare(self, module: nn.Module, eager: bool) -> tuple[nn.Module, _InputForm | None]:
        """The module to run, and the dtype and layout its input takes (``None``: the module
        runs as given, under autocast for fp16/bf16).

        Our own generator runs in its inference form (:mod:`lama_video.model.inference`: a copy
        with the BatchNorms folded, in the layout :func:`inference_layout` picks for the device,
        in bf16 as a whole when bf16 is asked for): on an AMX CPU big-lama at 512x512 takes 0.26x
        the float32 eager time that way, against 0.51x under autocast (``bench/model_bench.py
        --compare-official``); on an H200, batches of 8 frames of 512x512 ran at least as fast
        as under autocast (185 vs 159 frames/s in one lease, 143 vs 143 in another: README, GPU
        section). fp16 keeps autocast over the folded fp32 copy (a whole-fp16 module,
        with fp16's narrow range, is unmeasured). Other modules, and ours when ``eager``, are moved
        and put in eval mode.
        """
        from lama_video.model.generator import FFCResNetGenerator

        if eager or self.kind != KIND_GENERATOR or not isinstance(module, FFCResNetGenerator):
            return module.to(self.device).eval(), None
        from lama_video.model.inference import inference_form, inference_layout

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        folded = inference_form(module, self.device, dtype)  # in the device's layout
        return folded, _InputForm(dtype, inference_layout(self.device))

    def _autocast(self) -> AbstractContextManager[Any]:
        if self._amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def _forward(self, images: Tensor, holes: Tensor) -> Tensor:
        """Blended result of one batch: images (n, 3, H, W) in [0, 1], holes (n, 1, H, W) {0, 1},
        H, W multiples of the pad multiple -> (n, 3, H, W) float32."""
        with self._autocast():
            if self.kind == KIND_GENERATOR:
                x = torch.cat([images * (1 - holes), holes], dim=1)
                if self._input_form is not None:  # one copy into the module's dtype and layout
                    form = self._input_form
                    x = x.to(dtype=form.dtype, memory_format=form.memory_format)
                pred = self.module(x)
            else:
                # A traced big-lama.pt was traced with batch 1; feed it one item at a time.
                pred = torch.cat(
                    [
                        self.module(images[i : i + 1], holes[i : i + 1])
                        for i in range(images.shape[0])
                    ]
                )
        pred = pred.float()
        if not bool(torch.isfinite(pred).all()):
            # NaN/inf weights (a corrupt or badly fine-tuned checkpoint) would fill holes black.
            bad = (~torch.isfinite(pred)).float().mean().item()
            raise WeightsError(
                f"the model produced non-finite values (NaN/inf) for {bad:.0%} of its output; "
                "its weights are broken (corrupt file or a diverged fine-tune): use other "
                f"weights{' or --precision fp32' if self.precision == 'fp16' else ''}"
            )
        if self.kind == KIND_TORCHSCRIPT_BLENDED:
            return pred
        return holes * pred + (1 - holes) * images

    def _run_batched(self, images: Tensor, holes: Tensor) -> Tensor:
        """:meth:`_forward` over chunks of ``batch_size``, halving it on out-of-memory errors."""
        outs: list[Tensor] = []
        start = 0
        while start < images.shape[0]:
            n = self.batch_size
            try:
                outs.append(self._forward(images[start : start + n], holes[start : start + n]))
            except torch.cuda.OutOfMemoryError as err:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if n == 1:
                    raise LamaVideoError(
                        f"out of {self.device} memory even with batch size 1 on a "
                        f"{images.shape[-2]}x{images.shape[-1]} input; lower "
                        "inpaint.resize_limit_px "
                        "or use --device cpu"
                    ) from err
                self.batch_size = max(1, n // 2)
                log.warning(
                    "out of %s memory at batch size %d; retrying with batch size %d",
                    self.device,
                    n,
                    self.batch_size,
                )
                continue
            start += n
        return torch.cat(outs)

    def inpaint_tensor(self, images: Tensor, masks: Tensor) -> Tensor:
        """Inpaint whole images given as tensors (no cropping around holes).

        Args:
            images: (N, 3, H, W) float RGB in [0, 1], any device.
            masks: (N, 1, H, W) float, any value > 0 is a hole (the official threshold).

        Returns:
            (N, 3, H, W) float32 on :attr:`device`: ``mask * pred + (1 - mask) * image``
            (outside the holes exactly the input values), after the official symmetric pad to a
            multiple of 8 and crop back.

        Raises:
            ValueError: shapes or dtypes do not follow that contract.
        """
        if not (
            isinstance(images, Tensor)
            and images.dim() == 4
            and images.shape[1] == 3
            and images.is_floating_point()
        ):
            raise ValueError(
                f"images must be a (N, 3, H, W) float tensor in [0, 1], got "
                f"{tuple(getattr(images, 'shape', ()))} {getattr(images, 'dtype', type(images))}"
            )
        if not (
            isinstance(masks, Tensor)
            and masks.dim() == 4
            and masks.shape[1] == 1
            and masks.shape[0] == images.shape[0]
            and masks.shape[2:] == images.shape[2:]
        ):
            raise ValueError(
                f"masks must be a (N, 1, H, W) tensor matching images {tuple(images.shape)}, got "
                f"{tuple(getattr(masks, 'shape', ()))}"
            )
        h, w = images.shape[-2:]
        with torch.inference_mode():
            x = pad_to_multiple(images.to(self.device, torch.float32), self.pad_multiple)
            m = pad_to_multiple((masks.to(self.device) > 0).float(), self.pad_multiple)
            return self._run_batched(x, m)[..., :h, :w]

    # ------------------------------------------------------------------------------------ arrays

    def inpaint(self, frames: NDArray[np.uint8], masks: NDArray[np.bool_]) -> NDArray[np.uint8]:
        """Fill the holes of a batch of frames.

        Args:
            frames: (N, H, W, 3) uint8 RGB.
            masks: (N, H, W) bool, True = hole.

        Returns:
            (N, H, W, 3) uint8 RGB; pixels where the mask is False equal the input bit for bit.

        Raises:
            ValueError: ``frames``/``masks`` do not follow that contract.
        """
        check_batch(frames, masks)
        out = frames.copy()
        for item, filled in self._fill_items(frames, masks):
            b = item.box
            region = out[item.frame, b.y0 : b.y1, b.x0 : b.x1]
            hole = masks[item.frame, b.y0 : b.y1, b.x0 : b.x1]
            region[hole] = filled[hole]
        return out

    __call__ = inpaint

    def plan(self, mask: NDArray[np.bool_]) -> list[CropBox]:
        """The regions of a frame of this hole mask ``(H, W) bool`` that go through the model."""
        h, w = mask.shape
        if not mask.any():
            return []
        if max(h, w) <= self.crop_trigger_px:
            return [CropBox(0, h, 0, w)]
        return hole_boxes(mask, self.crop_margin_px)

    def _items(self, frames: NDArray[np.uint8], masks: NDArray[np.bool_]) -> Iterator[_Item]:
        for i in range(frames.shape[0]):
            for b in self.plan(masks[i]):
                image = frames[i, b.y0 : b.y1, b.x0 : b.x1]
                hole = masks[i, b.y0 : b.y1, b.x0 : b.x1]
                longest = max(b.height, b.width)
                resized = longest > self.resize_limit_px
                if resized:
                    scale = self.resize_limit_px / longest
                    size = (max(1, round(b.width * scale)), max(1, round(b.height * scale)))
                    image = cast(
                        NDArray[np.uint8], cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                    )
                    # Any hole coverage makes a low-resolution hole pixel, and the hole grows by
                    # the bicubic upscaling's 2-pixel support, so every original hole pixel is
                    # upscaled from predicted pixels only (no blur of the downscaled original).
                    small = cv2.resize(hole.astype(np.float32), size, interpolation=cv2.INTER_AREA)
                    hole = cv2.dilate((small > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
                yield _Item(i, b, image, hole, resized)

    def _fill_items(
        self, frames: NDArray[np.uint8], masks: NDArray[np.bool_]
    ) -> Iterator[tuple[_Item, NDArray[np.uint8]]]:
        """Run every item of the batch; yield each with its (box h, box w, 3) uint8 fill."""
        groups: dict[tuple[int, int], list[_Item]] = {}
        for item in self._items(frames, masks):
            h, w = item.hole.shape
            key = (padded_size(h, self.pad_multiple), padded_size(w, self.pad_multiple))
            groups.setdefault(key, []).append(item)
        for (hp, wp), items in groups.items():
            for start in range(0, len(items), self.batch_size * 4):
                chunk = items[start : start + self.batch_size * 4]
                yield from zip(chunk, self._fill_chunk(chunk, hp, wp), strict=True)

    def _fill_chunk(self, items: list[_Item], hp: int, wp: int) -> list[NDArray[np.uint8]]:
        # Official order: pad the uint8 image / mask with numpy's symmetric mode, then /255.
        imgs = np.stack(
            [
                np.pad(
                    it.image,
                    ((0, hp - it.image.shape[0]), (0, wp - it.image.shape[1]), (0, 0)),
                    mode="symmetric",
                )
                for it in items
            ]
        )
        holes = np.stack(
            [
                np.pad(
                    it.hole,
                    ((0, hp - it.hole.shape[0]), (0, wp - it.hole.shape[1])),
                    mode="symmetric",
                )
                for it in items
            ]
        )
        with torch.inference_mode():
            x = torch.from_numpy(imgs).to(self.device).permute(0, 3, 1, 2).float() / 255
            m = torch.from_numpy(holes).to(self.device)[:, None].float()
            blended = self._run_batched(x, m)
            fills = []
            for it, res in zip(items, blended, strict=True):
                res = res[:, : it.hole.shape[0], : it.hole.shape[1]]
                if it.resized:
                    res = F.interpolate(
                        res[None],
                        size=(it.box.height, it.box.width),
                        mode="bicubic",
                        align_corners=False,
                    )[0]
                # Official conversion: np.clip(x * 255, 0, 255).astype(uint8), i.e. truncation.
                u8 = (res * 255).clamp_(0, 255).to(torch.uint8)
                fills.append(u8.permute(1, 2, 0).cpu().numpy())
        return fills
