"""The weights registry and the weights cache: which LaMa weights exist, where they are on disk.

Torch-free on purpose: ``--engine auto`` asks :func:`weights_available` before deciding whether to
load LaMa at all, and a run that falls back to OpenCV (or ``lama-video weights download``) should
not pay for importing torch. Loading lives in :mod:`lama_video.model.weights`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lama_video.errors import WeightsError

__all__ = [
    "BIG_LAMA_ARCH",
    "GENERATOR_PREFIX",
    "HOME_ENV",
    "REGISTRY",
    "GeneratorArch",
    "InputContract",
    "WeightsFormat",
    "WeightsSpec",
    "cache_candidates",
    "cache_dir",
    "download_hint",
    "find_weights",
    "get_spec",
    "looks_like_path",
    "official_ckpt_in",
    "weights_available",
]


@dataclass(frozen=True)
class GeneratorArch:
    """Architecture numbers of an :class:`FFCResNetGenerator` (what a checkpoint's config fixes).

    Attributes:
        in_channels: input channels (4 = masked RGB + mask).
        out_channels: output channels (3 = RGB).
        ngf: width of the first layer; doubled by each downsampling (capped at ``max_features``).
        n_downsampling: number of stride-2 layers (and of upsampling layers).
        n_blocks: number of FFC residual blocks at the bottleneck.
        ratio_g: fraction of bottleneck channels in the global (spectral) branch.
        max_features: cap on any layer's width.
    """

    in_channels: int = 4
    out_channels: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 18
    ratio_g: float = 0.75
    max_features: int = 1024


# The released big-lama model (configs/training/big-lama.yaml of LaMa: ffc_resnet, ngf 64, 3
# downsamplings, 18 blocks, resnet ratio 0.75, sigmoid output): 50,975,875 parameters.
BIG_LAMA_ARCH = GeneratorArch()


WeightsFormat = Literal["lama_zip", "lama_folder", "checkpoint", "safetensors", "torchscript"]

# Environment variable naming the cache folder (default: the platform's user cache dir).
HOME_ENV = "LAMA_VIDEO_HOME"

# Key prefix of the generator inside LaMa training checkpoints (DefaultInpaintingTrainingModule).
GENERATOR_PREFIX = "generator."


@dataclass(frozen=True)
class InputContract:
    """What a model expects from the caller (the Inpainter applies it).

    Attributes:
        pad_multiple: height and width must be multiples of this (pad bottom/right first).
        value_range: range of image values (RGB float).
        channel_order: channel order of the image tensor.
        mask_hole_value: mask value meaning "fill this pixel" (the other value is 0).
    """

    pad_multiple: int = 8
    value_range: tuple[float, float] = (0.0, 1.0)
    channel_order: str = "RGB"
    mask_hole_value: float = 1.0


@dataclass(frozen=True)
class WeightsSpec:
    """One known set of weights: where it comes from and how to read it.

    Attributes:
        name: registry name (``--model NAME``).
        url: official download location, or None for weights that were not downloaded.
        file_name: file name in the cache folder.
        format: container format (see the module docstring).
        sha256: expected SHA-256 of the file, or None when no trustworthy value is known.
        md5: expected MD5 of the file, or None.
        size_bytes: expected size of the file, or None.
        key_prefix: prefix of the generator's keys inside the checkpoint's state_dict.
        arch: architecture of the generator, or None to read it from the file.
        contract: input contract of the model.
        provenance: where the URL and checksums come from.
    """

    name: str
    url: str | None
    file_name: str
    format: WeightsFormat
    sha256: str | None = None
    md5: str | None = None
    size_bytes: int | None = None
    key_prefix: str = GENERATOR_PREFIX
    arch: GeneratorArch | None = None
    contract: InputContract = field(default_factory=InputContract)
    provenance: str = ""


# The official release. LaMa's README (github.com/advimman/lama) points to this Hugging Face copy
# ("curl -LJO https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip"); the authors
# publish no checksum. The URL pins the repository revision whose Git-LFS record gives the SHA-256
# and size below (as recorded by a third party that checked its download against it; not verified
# by downloading here: the development machines are offline).
_BIG_LAMA = WeightsSpec(
    name="big-lama",
    url=(
        "https://huggingface.co/smartywu/big-lama/resolve/"
        "05cb2be7f8dbe6ca7c6e78f4fc827a4b2baaa4a9/big-lama.zip"
    ),
    file_name="big-lama.zip",
    format="lama_zip",
    sha256="f1b358ca24093b93a106183b98a3dea6e8ed09f3b43ea7251eb2c81e7b4575f6",
    md5=None,
    size_bytes=381_428_720,
    arch=BIG_LAMA_ARCH,
    provenance=(
        "LaMa README download link (Hugging Face smartywu/big-lama, revision 05cb2be7); "
        "sha256/size from that revision's Git-LFS record"
    ),
)

# IOPaint / lama-cleaner's TorchScript export of big-lama (LaMa bin/to_jit.py, traced at 120x120,
# forward(image, mask) -> blended image). URL and MD5 as in IOPaint (iopaint/model/lama.py).
_BIG_LAMA_TORCHSCRIPT = WeightsSpec(
    name="big-lama-torchscript",
    url="https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt",
    file_name="big-lama.pt",
    format="torchscript",
    sha256=None,
    md5="e3aa4aaa15225a33ec84f9f4bc47e500",
    size_bytes=None,
    key_prefix="",
    arch=None,
    provenance="IOPaint (iopaint/model/lama.py: LAMA_MODEL_URL, LAMA_MODEL_MD5)",
)

REGISTRY: dict[str, WeightsSpec] = {s.name: s for s in (_BIG_LAMA, _BIG_LAMA_TORCHSCRIPT)}


def get_spec(name: str) -> WeightsSpec:
    """The registry entry called ``name``; WeightsError listing the valid names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise WeightsError(
            f"unknown weights name {name!r}; expected one of {', '.join(REGISTRY)} or a path to "
            "a weights file or folder"
        ) from None


def cache_dir() -> Path:
    """Folder where downloaded weights live: ``$LAMA_VIDEO_HOME``, else the user cache dir.

    The folder is not created here (see :func:`~lama_video.model.download.download_weights`).
    """
    env = os.environ.get(HOME_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lama-video", appauthor=False))


def cache_candidates(spec: WeightsSpec, root: Path | None = None) -> list[Path]:
    """Paths in the cache where ``spec``'s weights may be, in order of preference.

    The downloaded file itself, then (for the official zip) the folder it unpacks to.
    """
    root = cache_dir() if root is None else root
    paths = [root / spec.file_name]
    if spec.format == "lama_zip":
        paths.append(root / Path(spec.file_name).stem)
    return paths


def find_weights(name: str) -> Path | None:
    """Path of the registry weights ``name`` in the cache, or None when they are not there."""
    spec = get_spec(name)
    for path in cache_candidates(spec):
        if path.is_file() or (path.is_dir() and official_ckpt_in(path) is not None):
            return path
    return None


def official_ckpt_in(folder: Path) -> Path | None:
    """``models/best.ckpt`` (or the only ``models/*.ckpt``) of an official model folder."""
    if not (folder / "config.yaml").is_file():
        return None
    best = folder / "models" / "best.ckpt"
    if best.is_file():
        return best
    ckpts = sorted((folder / "models").glob("*.ckpt")) if (folder / "models").is_dir() else []
    return ckpts[0] if len(ckpts) == 1 else None


_WEIGHT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".safetensors", ".zip")


def looks_like_path(model: str) -> bool:
    """Whether ``model`` names a file or folder (a separator or a weights suffix), not a registry
    entry."""
    return (
        any(sep in model for sep in ("/", "\\", os.sep))
        or Path(model).suffix.lower() in _WEIGHT_SUFFIXES
    )


def weights_available(model: str) -> bool:
    """True when ``model`` is an existing path or a registry name found in the local weights cache.

    A value that looks like a path (has a separator or a checkpoint suffix) is only checked on disk.
    """
    if Path(model).expanduser().exists():
        return True
    if looks_like_path(model):
        return False
    try:
        return find_weights(model) is not None
    except WeightsError:
        return False


def download_hint(model: str) -> str:
    """The command that installs ``model`` (a registry name) into the cache."""
    return "lama-video weights download" + ("" if looks_like_path(model) else f" {model}")
