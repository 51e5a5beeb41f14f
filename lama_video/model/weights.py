"""LaMa weights: strict, safe loading of every released format (registry and cache: ``registry``).

Formats :func:`load_model` accepts (detected from the content, not only the file name):

- the official ``big-lama`` folder (``config.yaml`` + ``models/best.ckpt``) or ``big-lama.zip``
  holding it: a PyTorch-Lightning checkpoint whose ``state_dict`` keys are ``generator.<key>``
  (plus the evaluators' ``val_evaluator.*`` / ``test_evaluator.*``, which are ignored);
- a ``.ckpt`` / ``.pt`` / ``.pth`` file with such a checkpoint or a plain generator state_dict;
- a ``.safetensors`` file with a generator state_dict (needs the optional ``safetensors`` package);
- IOPaint's TorchScript ``big-lama.pt`` (LaMa's ``bin/to_jit.py`` export). A TorchScript file is
  a program (``torch.jit.load`` runs its code, which can write files), so it is never run by
  default: its tensors are read as data (:mod:`lama_video.model.script_archive`) into our own
  generator. Only when that is impossible does it run, and then only with ``trust_checkpoint``
  or when it is the registry's file and its checksum matches (checked on every load).

A checkpoint is untrusted input: it is unpickled with ``torch.load(weights_only=True)``, which
builds only tensors and plain containers. The few harmless PyTorch-Lightning types a training
checkpoint may name are mapped to inert stand-ins; any other type is refused with a
:class:`~lama_video.errors.WeightsError` unless ``trust_checkpoint`` is set. Weights then load with
``strict=True`` after the pure :func:`filter_state_dict`; every mismatch is an error that names the
keys. Never ``strict=False``: it silently leaves missing layers at random values.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lama_video.errors import WeightsError
from lama_video.model.ffc import autocast_disabled, split_channels
from lama_video.model.generator import FFCResNetGenerator, GeneratorArch

# The registry and cache lookup are torch-free (lama_video.model.registry); re-exported here.
from lama_video.model.registry import (  # noqa: F401
    GENERATOR_PREFIX,
    HOME_ENV,
    REGISTRY,
    InputContract,
    WeightsFormat,
    WeightsSpec,
    cache_candidates,
    cache_dir,
    find_weights,
    get_spec,
    official_ckpt_in,
)
from lama_video.model.script_archive import ScriptArchiveError, read_script_tensors

log = logging.getLogger(__name__)

ModelKind = Literal["generator", "torchscript_blended"]

# Training-only modules that LaMa's bin/make_checkpoint.py may leave in best.ckpt: the evaluators
# (SSIM/LPIPS/FID networks; always there), the discriminator and losses (unless stripped).
IGNORED_PREFIXES = ("val_evaluator.", "test_evaluator.", "discriminator.", "loss_")

_MAX_LISTED_KEYS = 5


# --------------------------------------------------------------------------------------------
# The loaded model


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to run, with what the caller needs to feed it.

    Attributes:
        module: the network in eval mode, on the requested device. For ``kind == "generator"``
            an :class:`FFCResNetGenerator`: ``(N, 4, H, W)`` -> raw ``(N, 3, H, W)`` in [0, 1]
            (not blended). For ``kind == "torchscript_blended"`` a TorchScript module:
            ``(image (1, 3, H, W), mask (1, 1, H, W))`` -> the blended image.
        kind: calling convention of :attr:`module` (whether the caller must blend).
        spec: registry entry, or a spec describing the file that was loaded.
        path: file or folder the weights were read from.
        arch: generator architecture (None for TorchScript).
    """

    module: nn.Module
    kind: ModelKind
    spec: WeightsSpec
    path: Path
    arch: GeneratorArch | None

    @property
    def contract(self) -> InputContract:
        """Input contract (pad multiple, value range, channel order)."""
        return self.spec.contract

    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """Fill the holes, whatever the calling convention; returns the blended image.

        Args:
            image: (N, 3, H, W) float RGB in [0, 1]; H, W multiples of ``contract.pad_multiple``.
            mask: (N, 1, H, W) float, 1 = hole, 0 = keep (binarise before calling).

        Returns:
            (N, 3, H, W) float in [0, 1]: ``mask * prediction + (1 - mask) * image``.
        """
        if self.kind == "generator":
            x = torch.cat([image * (1 - mask), mask], dim=1)
            raw = self.module(x)
            return mask * raw.to(image.dtype) + (1 - mask) * image
        # The TorchScript export was traced with batch 1 in float32: run it that way.
        outs = []
        with autocast_disabled(image.device):
            for i in range(image.shape[0]):
                outs.append(self.module(image[i : i + 1].float(), mask[i : i + 1].float()))
        return torch.cat(outs).to(image.dtype)


def load_model(
    source: str | os.PathLike[str],
    *,
    trust_checkpoint: bool = False,
    map_location: str | torch.device = "cpu",
    config: str | os.PathLike[str] | None = None,
) -> LoadedModel:
    """Load LaMa weights from a registry name or a path, strictly.

    Args:
        source: registry name (looked up in :func:`cache_dir`) or path to a folder, ``.zip``,
            ``.ckpt`` / ``.pt`` / ``.pth``, ``.safetensors`` or TorchScript file.
        trust_checkpoint: allow the file to run code (only for files you trust): unpickle with
            ``weights_only=False`` (checkpoints holding types we do not know), or run a
            TorchScript file whose tensors cannot be read as data.
        map_location: device of the returned module.
        config: a LaMa training ``config.yaml`` giving the architecture; default: the one beside
            the checkpoint (official layout), else the architecture inferred from tensor shapes.

    Returns:
        A :class:`LoadedModel` in eval mode with ``requires_grad`` off.

    A ``big-lama.zip`` is unpacked to a temporary folder first (about 410 MB of free space).

    Raises:
        WeightsError: not found, unreadable, corrupt, untrusted, or not matching the architecture.
    """
    path, spec = _resolve_source(source)
    device = torch.device(map_location)
    cfg_path = Path(config) if config is not None else None
    fmt = detect_format(path)
    cfg_arch: GeneratorArch | None = None
    if fmt == "torchscript":
        registry_file = spec is not None and _verify_registry_file(path, spec)
        try:
            # A TorchScript file is a program: read its tensors as data instead of running it.
            state = _generator_state_of_script(read_script_tensors(path))
        except ScriptArchiveError as err:
            if not (trust_checkpoint or registry_file):
                raise WeightsError(
                    f"{path} is a TorchScript file, which is a program, not only weights, and its "
                    f"tensors could not be read as plain data ({err}); loading it would run its "
                    "code. If you trust the file, pass --trust-checkpoint "
                    "(inpaint.trust_checkpoint: true); otherwise use the official big-lama.zip"
                ) from err
            log.warning("running the TorchScript code of %s (%s)", path, err)
            module = _load_torchscript(path, device)
            spec = spec or _adhoc_spec(path, fmt)
            return LoadedModel(
                module=module, kind="torchscript_blended", spec=spec, path=path, arch=None
            )
        spec = _plain_spec(spec or _adhoc_spec(path, fmt))
        cfg_arch = _arch_from_config_file(cfg_path) if cfg_path is not None else None
    elif fmt == "lama_zip":
        with tempfile.TemporaryDirectory(prefix="lama-video-") as tmp:
            folder = _extract_official_zip(path, Path(tmp))
            state, found_cfg = _read_official_folder(folder, trust_checkpoint)
            cfg_arch = _arch_from_config_file(cfg_path or found_cfg)
    elif fmt == "lama_folder":
        state, found_cfg = _read_official_folder(path, trust_checkpoint)
        cfg_arch = _arch_from_config_file(cfg_path or found_cfg)
    elif fmt == "safetensors":
        state = _read_safetensors(path)
        cfg_arch = _arch_from_config_file(cfg_path or _config_beside(path))
    else:
        state = _read_checkpoint(path, trust_checkpoint)
        cfg_arch = _arch_from_config_file(cfg_path or _config_beside(path))

    spec = spec or _adhoc_spec(path, fmt)
    state = filter_state_dict(state, prefix=spec.key_prefix, source=path)
    arch = cfg_arch or spec.arch or infer_arch(state, source=path)
    model = FFCResNetGenerator.from_arch(arch)
    load_strict(model, state, source=path)
    model.eval().requires_grad_(False).to(device)
    log.info("loaded LaMa generator from %s (%s)", path, arch)
    return LoadedModel(module=model, kind="generator", spec=spec, path=path, arch=arch)


def _resolve_source(source: str | os.PathLike[str]) -> tuple[Path, WeightsSpec | None]:
    """Registry name or path -> (existing path, registry spec or None)."""
    text = os.fspath(source)
    if text in REGISTRY and not Path(text).exists():
        spec = REGISTRY[text]
        found = find_weights(text)
        if found is None:
            raise WeightsError(
                f"weights {text!r} are not in the cache ({cache_dir()}); run "
                f"`lama-video weights download {text}`, or download {spec.url} by hand and pass "
                "--model PATH"
            )
        return found, spec
    path = Path(text).expanduser()
    if not path.exists():
        raise WeightsError(
            f"weights {text!r} not found: expected a registry name ({', '.join(REGISTRY)}) or an "
            "existing file or folder; run `lama-video weights list`"
        )
    return path, None


def _verify_registry_file(path: Path, spec: WeightsSpec) -> bool:
    """Check a registry file against its checksum (on every load); True when one matched."""
    from lama_video.model.download import compare, file_checksums

    matched, problems = compare(file_checksums(path), spec)
    if matched is False:
        raise WeightsError(
            f"{path} does not match the registry's checksum for {spec.name!r} "
            f"({'; '.join(problems)}); it was changed or is corrupt: run "
            f"`lama-video weights download {spec.name}` again"
        )
    return bool(matched)


def _plain_spec(spec: WeightsSpec) -> WeightsSpec:
    """``spec`` of a TorchScript file whose tensors were read into a generator state_dict."""
    return dataclasses.replace(spec, key_prefix=GENERATOR_PREFIX)


def _generator_state_of_script(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The ``generator.*`` entries of a TorchScript module tree, whatever wraps them.

    LaMa's bin/to_jit.py traces ``JITWrapper(model=DefaultInpaintingTrainingModule)``, so the
    generator's tensors are ``model.generator.<key>``; an export of the bare generator has no
    wrapper. The result is keyed like a LaMa training checkpoint (``generator.<key>``).
    """
    prefixes = {
        k[: k.index("generator.")]
        for k in tensors
        if k.startswith("generator.") or ".generator." in k
    }
    if len(prefixes) > 1:
        names = ", ".join(sorted(prefixes))
        raise ScriptArchiveError(f"several generators in the module ({names})")
    if prefixes:
        wrap = prefixes.pop()
        state = {k[len(wrap) :]: v for k, v in tensors.items() if k.startswith(wrap)}
    else:
        state = {GENERATOR_PREFIX + k: v for k, v in tensors.items()}
    if GENERATOR_PREFIX + "model.1.ffc.convl2l.weight" not in state:
        raise ScriptArchiveError("it holds no LaMa generator tensors")
    return state


def _adhoc_spec(path: Path, fmt: WeightsFormat) -> WeightsSpec:
    """A spec describing a user-supplied file (no URL, no checksum)."""
    prefix = "" if fmt == "torchscript" else GENERATOR_PREFIX
    return WeightsSpec(
        name=path.name,
        url=None,
        file_name=path.name,
        format=fmt,
        key_prefix=prefix,
        provenance="user-supplied file",
    )


# --------------------------------------------------------------------------------------------
# Format detection and readers


def detect_format(path: Path) -> WeightsFormat:
    """Container format of ``path`` from its content (zip members, magic bytes) and suffix."""
    if path.is_dir():
        if official_ckpt_in(path) is None:
            raise WeightsError(
                f"folder {path} is not a LaMa model folder: expected config.yaml and "
                "models/best.ckpt (the unpacked big-lama.zip)"
            )
        return "lama_folder"
    if path.suffix.lower() == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise _corrupt(path, err) from err
        if any(n.endswith(".ckpt") for n in names) and any(
            n.endswith("config.yaml") for n in names
        ):
            return "lama_zip"
        # torch.jit.save archives carry TorchScript code and constants; torch.save ones do not.
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "checkpoint"
        raise WeightsError(
            f"{path} is a zip archive but neither big-lama.zip (config.yaml + models/best.ckpt), "
            "a torch checkpoint nor a TorchScript file; pass the model file itself"
        )
    with path.open("rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":  # pickle protocol 2+: a legacy (pre-1.6) torch.save file
        return "checkpoint"
    raise WeightsError(
        f"{path} is not a weights file (not a zip-format torch file, legacy torch pickle or "
        ".safetensors); it may be truncated or corrupt: download it again"
    )


def _extract_official_zip(path: Path, dest: Path) -> Path:
    """Unpack config.yaml and the checkpoint of big-lama.zip into ``dest``; return its folder."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.endswith(("config.yaml", ".ckpt"))]
            # Checkpoints are float tensors, which hardly compress: a member that unpacks to far
            # more than the archive's own size is a zip bomb, refused before anything is read.
            budget = 2 * path.stat().st_size + _ZIP_SLACK_BYTES
            total = sum(zf.getinfo(n).file_size for n in members)
            if total > budget:
                raise WeightsError(
                    f"{path} would unpack to {total / 2**20:.0f} MiB from a "
                    f"{path.stat().st_size / 2**20:.1f} MiB archive; that is not big-lama.zip "
                    "(its checkpoint hardly compresses): refusing it, download it again"
                )
            for name in members:
                parts = Path(name).parts
                if name.startswith("/") or ".." in parts:
                    raise WeightsError(f"{path} holds an unsafe member name {name!r}; refusing it")
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, target.open("wb") as out:
                    _copy_at_most(src, out, zf.getinfo(name).file_size, path)
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as err:
        raise _corrupt(path, err) from err
    for cfg in sorted(dest.rglob("config.yaml"), key=lambda p: len(p.parts)):
        if official_ckpt_in(cfg.parent) is not None:
            return cfg.parent
    raise WeightsError(
        f"{path} does not have the big-lama.zip layout (<folder>/config.yaml + "
        "<folder>/models/best.ckpt); unpack it and pass the checkpoint file instead"
    )


_ZIP_SLACK_BYTES = 64 << 20


def _copy_at_most(src: Any, out: Any, limit: int, archive: Path) -> None:
    """Copy at most ``limit`` bytes (the member's declared size); more is a forged archive."""
    left = limit
    while chunk := src.read(min(1 << 20, left + 1)):
        left -= len(chunk)
        if left < 0:
            raise WeightsError(f"{archive} has a member larger than it declares; refusing it")
        out.write(chunk)


def _read_official_folder(folder: Path, trust: bool) -> tuple[dict[str, Any], Path]:
    ckpt = official_ckpt_in(folder)
    if ckpt is None:  # detect_format checked it; keep the type checker honest
        raise WeightsError(f"{folder} has no config.yaml + models/best.ckpt")
    return _read_checkpoint(ckpt, trust), folder / "config.yaml"


def _config_beside(path: Path) -> Path | None:
    """LaMa config.yaml of the official layout (``<run>/models/x.ckpt``) or next to the file.

    A config.yaml without a ``generator`` section (another tool's) is not one.
    """
    candidates = [path.parent / "config.yaml"]
    if path.parent.name == "models":
        candidates.insert(0, path.parent.parent / "config.yaml")
    for cand in candidates:
        try:
            if cand.is_file() and re.search(r"(?m)^generator:", cand.read_text("utf-8")):
                return cand
        except (OSError, UnicodeDecodeError):
            continue
    return None


class _InertType:
    """Stand-in for a training-framework class that a checkpoint names (e.g. as a dict key)."""


# Types a PyTorch-Lightning 1.x training checkpoint may name outside its tensors, mapped to inert
# stand-ins: the callback *class* is only a dict key of ``callbacks``; AttributeDict is a dict.
_HARMLESS_GLOBALS: dict[str, Any] = {
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint": _InertType,
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping": _InertType,
    "pytorch_lightning.callbacks.lr_monitor.LearningRateMonitor": _InertType,
    "pytorch_lightning.utilities.parsing.AttributeDict": dict,
}

# torch's weights-only unpickler names a refused global in one of these two ways.
_UNSUPPORTED_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")


def _read_checkpoint(path: Path, trust: bool) -> dict[str, Any]:
    """torch.load a checkpoint safely; return its (unfiltered) state_dict."""
    try:
        if trust:
            log.warning("loading %s with full unpickling (--trust-checkpoint)", path)
            obj = torch.load(path, map_location="cpu", weights_only=False)
        else:
            globs: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
                (obj_, name) for name, obj_ in _HARMLESS_GLOBALS.items()
            ]
            with torch.serialization.safe_globals(globs):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        match = _UNSUPPORTED_GLOBAL.search(text)
        if not trust and (match or "Weights only load failed" in text):
            what = f"the Python object {match.group(1)}" if match else "Python objects"
            raise WeightsError(
                f"checkpoint {path} holds {what} (not only tensors and plain containers); it "
                "is refused as unsafe, since loading it could run code from the file. If you "
                "trust the file, pass --trust-checkpoint (inpaint.trust_checkpoint: true), or "
                "convert it to a plain state_dict"
            ) from err
        raise _corrupt(path, err) from err
    except WeightsError:
        raise
    except Exception as err:  # torch raises RuntimeError/EOFError/ValueError... on bad files
        raise _corrupt(path, err) from err
    return _state_dict_of(obj, path)


def _state_dict_of(obj: Any, path: Path) -> dict[str, Any]:
    """The state_dict inside a loaded checkpoint (Lightning ``{'state_dict': ...}`` or plain)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if isinstance(obj, Mapping) and obj and all(isinstance(k, str) for k in obj):
        tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
        if len(tensors) == len(obj):
            return dict(tensors)
        bad = [k for k in obj if k not in tensors][:_MAX_LISTED_KEYS]
        raise WeightsError(
            f"checkpoint {path} state_dict has non-tensor entries ({', '.join(bad)}); expected "
            "a LaMa generator state_dict"
        )
    raise WeightsError(
        f"checkpoint {path} holds a {type(obj).__name__}, expected a state_dict (name -> "
        "tensor) or a training checkpoint with a 'state_dict' entry"
    )


def _read_safetensors(path: Path) -> dict[str, Any]:
    try:
        from safetensors.torch import load_file
    except ImportError as err:
        raise WeightsError(
            f"{path} is a .safetensors file but the safetensors package is not installed; run "
            "`pip install safetensors` (or `pip install lama-video[safetensors]`)"
        ) from err
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as err:  # SafetensorError, OSError
        raise _corrupt(path, err) from err


def _load_torchscript(path: Path, device: torch.device) -> nn.Module:
    try:
        with warnings.catch_warnings():
            # IOPaint ships TorchScript; torch marks jit.load deprecated in favour of torch.export.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as err:  # RuntimeError on bad archives
        raise _corrupt(path, err) from err
    module.eval()
    return module


def _corrupt(path: Path, err: BaseException) -> WeightsError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return WeightsError(
        f"cannot read weights file {path} ({reason[:160]}); it is corrupt or truncated: "
        "download it again (`lama-video weights verify` checks a file)"
    )


# --------------------------------------------------------------------------------------------
# State dict filtering and strict loading


def filter_state_dict(
    state: Mapping[str, Any], *, prefix: str = GENERATOR_PREFIX, source: object = "checkpoint"
) -> dict[str, Any]:
    """Keep the generator's entries of a checkpoint state_dict, with ``prefix`` removed.

    Pure: returns a new dict, ``state`` is not modified. A state without any ``prefix`` key is
    taken as a plain generator state_dict and returned as is. Otherwise keys under
    :data:`IGNORED_PREFIXES` (evaluators, discriminator, losses) are dropped, and any other key
    is an error.

    Raises:
        WeightsError: keys that belong neither to the generator nor to known training modules.
    """
    if not prefix or not any(k.startswith(prefix) for k in state):
        return dict(state)
    kept: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in state.items():
        if key.startswith(prefix):
            kept[key[len(prefix) :]] = value
        elif not key.startswith(IGNORED_PREFIXES):
            unknown.append(key)
    if unknown:
        raise WeightsError(
            f"{source} has keys outside the generator ({prefix}*) and the known training "
            f"modules: {_first(unknown)}; expected a LaMa checkpoint"
        )
    return kept


def load_strict(model: nn.Module, state: Mapping[str, Any], *, source: object) -> None:
    """``model.load_state_dict(state, strict=True)``, with a WeightsError naming the bad keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_first(unexpected)})")
    if wrong:
        problems.append(f"{len(wrong)} keys with the wrong shape ({_first(wrong)})")
    if problems:
        raise WeightsError(
            f"weights in {source} do not fit the generator: {'; '.join(problems)}; use the "
            "matching config.yaml or the released big-lama files"
        )
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as err:  # e.g. a dtype that cannot be copied
        raise WeightsError(f"weights in {source} do not load: {str(err).splitlines()[0]}") from err


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED_KEYS])
    return shown + (", ..." if len(items) > _MAX_LISTED_KEYS else "")


# --------------------------------------------------------------------------------------------
# Architecture: from LaMa's config.yaml, or from tensor shapes


def _arch_from_config_file(path: Path | None) -> GeneratorArch | None:
    if path is None:
        return None
    import yaml  # only to read LaMa's training config; the run config lives in config.py

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise WeightsError(f"cannot read model config {path}: {err}") from err
    if not isinstance(data, Mapping) or "generator" not in data:
        raise WeightsError(f"model config {path} has no 'generator' section; expected LaMa's")
    return arch_from_config(data, source=path)


_INTERPOLATION = re.compile(r"\$\{([^${}]+)\}")


def resolve_interpolations(root: Mapping[str, Any], section: str) -> Any:
    """Resolve OmegaConf-style ``${a.b.c}`` references inside ``root[section]``.

    References are absolute dotted paths into ``root``. A value that is exactly one reference
    takes the referenced value (and its type); references inside longer strings are substituted as
    text. Resolver calls such as ``${env:HOME}`` are left as they are.

    Raises:
        WeightsError: a reference to a missing key, or a reference cycle.
    """

    def lookup(dotted: str, seen: tuple[str, ...]) -> Any:
        if dotted in seen:
            raise WeightsError(f"config reference cycle: {' -> '.join((*seen, dotted))}")
        node: Any = root
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise WeightsError(f"config reference ${{{dotted}}} points to a missing key")
            node = node[part]
        return resolve(node, (*seen, dotted))

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, Mapping):
            return {k: resolve(v, seen) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v, seen) for v in node]
        if not isinstance(node, str):
            return node
        whole = _INTERPOLATION.fullmatch(node.strip())
        if whole and ":" not in whole.group(1):
            return lookup(whole.group(1).strip(), seen)
        return _INTERPOLATION.sub(
            lambda m: m.group(0) if ":" in m.group(1) else str(lookup(m.group(1).strip(), seen)),
            node,
        )

    return resolve(root[section], (section,))


_GENERATOR_KEYS = {
    "kind",
    "input_nc",
    "output_nc",
    "ngf",
    "n_downsampling",
    "n_blocks",
    "add_out_act",
    "max_features",
    "padding_type",
    "init_conv_kwargs",
    "downsample_conv_kwargs",
    "resnet_conv_kwargs",
    "out_ffc",
    "spatial_transform_layers",
}
_CONV_KWARGS_KEYS = {"ratio_gin", "ratio_gout", "enable_lfu"}


def arch_from_config(config: Mapping[str, Any], *, source: object = "config") -> GeneratorArch:
    """GeneratorArch from a LaMa training config (its ``generator`` section).

    Args:
        config: the whole parsed ``config.yaml`` (needed to resolve ``${...}`` references).
        source: named in error messages.

    Raises:
        WeightsError: a generator other than the big-lama family (``ffc_resnet`` with local-only
            stem and downsampling, no LFU, reflect padding, sigmoid output).
    """
    gen = resolve_interpolations(config, "generator")

    def bad(what: str) -> WeightsError:
        return WeightsError(
            f"{source}: unsupported generator setting {what}; this package implements LaMa's "
            "ffc_resnet generator as released in big-lama"
        )

    if not isinstance(gen, Mapping):
        raise bad(f"generator = {gen!r}")
    unknown = sorted(set(gen) - _GENERATOR_KEYS)
    if unknown:
        raise bad(f"keys {unknown}")
    if gen.get("kind", "ffc_resnet") != "ffc_resnet":
        raise bad(f"kind = {gen.get('kind')!r}")
    if gen.get("add_out_act", "sigmoid") != "sigmoid":
        raise bad(f"add_out_act = {gen.get('add_out_act')!r}")
    if gen.get("padding_type", "reflect") != "reflect":
        raise bad(f"padding_type = {gen.get('padding_type')!r}")
    if gen.get("out_ffc", False) or gen.get("spatial_transform_layers") is not None:
        raise bad("out_ffc / spatial_transform_layers")
    ratios: dict[str, tuple[float, float]] = {}
    for name in ("init_conv_kwargs", "downsample_conv_kwargs", "resnet_conv_kwargs"):
        kw = gen.get(name) or {}
        if not isinstance(kw, Mapping) or set(kw) - _CONV_KWARGS_KEYS:
            raise bad(f"{name} = {kw!r}")
        if kw.get("enable_lfu", False):
            raise bad(f"{name}.enable_lfu = true")
        ratios[name] = (float(kw.get("ratio_gin", 0)), float(kw.get("ratio_gout", 0)))
    if ratios["init_conv_kwargs"] != (0.0, 0.0) or ratios["downsample_conv_kwargs"] != (0.0, 0.0):
        raise bad("a global branch in the stem or the downsampling layers")
    ratio_gin, ratio_gout = ratios["resnet_conv_kwargs"]
    if ratio_gin != ratio_gout:
        raise bad(f"resnet_conv_kwargs ratio_gin {ratio_gin} != ratio_gout {ratio_gout}")
    try:
        return GeneratorArch(
            in_channels=int(gen.get("input_nc", 4)),
            out_channels=int(gen.get("output_nc", 3)),
            ngf=int(gen.get("ngf", 64)),
            n_downsampling=int(gen.get("n_downsampling", 3)),
            n_blocks=int(gen.get("n_blocks", 9)),
            ratio_g=ratio_gin,
            max_features=int(gen.get("max_features", 1024)),
        )
    except (TypeError, ValueError) as err:
        raise bad(str(err)) from err


_BLOCK_KEY = re.compile(r"model\.(\d+)\.conv1\.ffc\.")
_DOWN_KEY = re.compile(r"model\.(\d+)\.ffc\.convl2l\.weight")


def infer_arch(state: Mapping[str, Any], *, source: object = "checkpoint") -> GeneratorArch:
    """GeneratorArch read from the tensor shapes of a (filtered) generator state_dict.

    Raises:
        WeightsError: the keys are not those of an FFC ResNet generator.
    """
    try:
        stem = state["model.1.ffc.convl2l.weight"]
        ngf, in_channels = int(stem.shape[0]), int(stem.shape[1])
        blocks = sorted({int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))})
        downs = sorted(
            int(m.group(1)) for k in state if (m := _DOWN_KEY.fullmatch(k)) and int(m.group(1)) > 1
        )
        n_downsampling = len(downs)
        if not blocks or not downs or downs != list(range(2, 2 + n_downsampling)):
            raise KeyError("residual or downsampling layers")
        first = blocks[0]
        local = int(state[f"model.{first}.conv1.ffc.convl2l.weight"].shape[0])
        glob = int(state[f"model.{first}.conv1.ffc.convl2g.weight"].shape[0])
        width = local + glob
        out_conv = max(
            (int(m.group(1)) for k in state if (m := re.fullmatch(r"model\.(\d+)\.weight", k))),
        )
        out_channels = int(state[f"model.{out_conv}.weight"].shape[0])
    except (KeyError, IndexError, AttributeError, ValueError) as err:
        raise WeightsError(
            f"cannot infer the generator architecture from {source} (no {err}); expected an FFC "
            "ResNet (LaMa) state_dict, or pass its config.yaml"
        ) from err
    if any(".lfu." in k for k in state):
        raise WeightsError(f"{source} uses the local Fourier unit (LFU), which is not supported")
    ratio = glob / width
    if split_channels(width, ratio)[1] != glob:  # float rounding below an integer: nudge up
        ratio = (glob + 0.5) / width
    # Widths double per downsampling up to max_features; a narrower bottleneck means a cap.
    uncapped = ngf * 2**n_downsampling
    return GeneratorArch(
        in_channels=in_channels,
        out_channels=out_channels,
        ngf=ngf,
        n_downsampling=n_downsampling,
        n_blocks=len(blocks),
        ratio_g=ratio,
        max_features=max(1024, width) if width == uncapped else width,
    )
