"""Training checkpoints: the big-lama release layout (for ``--model``) and the resumable state.

``OUT/config.yaml`` + ``OUT/models/best.ckpt`` is the layout of LaMa's ``big-lama.zip`` (built by
its ``bin/make_checkpoint.py``): ``best.ckpt`` is ``{'state_dict': {'generator.' + key: tensor}}``
and ``config.yaml`` has LaMa's ``generator:`` section, so every command loads the folder with
``--model OUT`` (:func:`lama_video.model.weights.load_model`). ``OUT/models/last.ckpt`` holds what
resuming needs: both networks, both optimizers, the step and the random states. All files hold
only tensors and plain containers (``torch.load(weights_only=True)`` reads them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lama_video.errors import WeightsError
from lama_video.model.generator import GeneratorArch

CONFIG_NAME = "config.yaml"
BEST_NAME = Path("models") / "best.ckpt"
LAST_NAME = Path("models") / "last.ckpt"
GENERATOR_PREFIX = "generator."
DISCRIMINATOR_PREFIX = "discriminator."


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # an interrupted save never leaves a truncated checkpoint


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def generator_config_yaml(arch: GeneratorArch, notes: Mapping[str, object] | None = None) -> str:
    """LaMa's ``config.yaml`` text for ``arch`` (the ``generator:`` section, resolved, block style).

    ``notes`` (flat str -> scalar) are written under a ``lama_video:`` section (LaMa ignores it).
    """

    def scalar(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    r = arch.ratio_g
    lines = [
        "# Written by lama-video finetune in LaMa's big-lama layout (+ models/best.ckpt).",
        "generator:",
        "  kind: ffc_resnet",
        f"  input_nc: {arch.in_channels}",
        f"  output_nc: {arch.out_channels}",
        f"  ngf: {arch.ngf}",
        f"  n_downsampling: {arch.n_downsampling}",
        f"  n_blocks: {arch.n_blocks}",
        "  add_out_act: sigmoid",
    ]
    if arch.max_features != 1024:
        lines.append(f"  max_features: {arch.max_features}")
    for section, (gin, gout) in (
        ("init_conv_kwargs", (0, 0)),
        ("downsample_conv_kwargs", (0, 0)),
        ("resnet_conv_kwargs", (r, r)),
    ):
        lines += [
            f"  {section}:",
            f"    ratio_gin: {gin}",
            f"    ratio_gout: {gout}",
            "    enable_lfu: false",
        ]
    lines += ["training_model:", "  kind: default", "  concat_mask: true"]
    if notes:
        lines.append("lama_video:")
        lines += [f"  {k}: {scalar(v)}" for k, v in notes.items()]
    return "\n".join(lines) + "\n"


def save_release(
    out_dir: str | Path,
    generator: nn.Module,
    arch: GeneratorArch,
    notes: Mapping[str, object] | None = None,
) -> Path:
    """Write ``out_dir/config.yaml`` and ``out_dir/models/best.ckpt`` (generator only).

    Returns:
        ``out_dir`` as a Path (what ``--model`` takes).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {GENERATOR_PREFIX + k: v for k, v in _cpu_state(generator).items()}
    _atomic_save({"state_dict": state}, out / BEST_NAME)
    tmp = out / (CONFIG_NAME + ".tmp")
    tmp.write_text(generator_config_yaml(arch, notes), encoding="utf-8")
    os.replace(tmp, out / CONFIG_NAME)
    return out


def save_last(out_dir: str | Path, state: Mapping[str, Any]) -> Path:
    """Write the resumable state to ``out_dir/models/last.ckpt``; returns the file's path."""
    path = Path(out_dir) / LAST_NAME
    _atomic_save(dict(state), path)
    return path


def load_last(out_dir: str | Path) -> dict[str, Any]:
    """Read ``out_dir/models/last.ckpt``.

    Raises:
        WeightsError: missing or unreadable.
    """
    path = Path(out_dir) / LAST_NAME
    if not path.is_file():
        raise WeightsError(f"{str(path)!r} not found; nothing to resume in {str(out_dir)!r}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(
            f"cannot read the training state {str(path)!r} ({type(err).__name__}: {err}); "
            "start a new run in another folder"
        ) from err


def load_discriminator_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Discriminator weights from a LaMa training checkpoint, our ``last.ckpt`` or a state_dict.

    Keys prefixed ``discriminator.`` (LaMa's Lightning module) are taken and stripped; a file
    without such keys is taken as a plain discriminator state_dict.

    Raises:
        WeightsError: missing or unreadable file.
    """
    p = Path(path)
    if p.is_dir():
        p = p / LAST_NAME
    if not p.is_file():
        raise WeightsError(f"discriminator weights {str(p)!r} not found; expected a .ckpt file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"cannot read {str(p)!r} as a checkpoint: {type(err).__name__}") from err
    if isinstance(obj, Mapping) and isinstance(obj.get("discriminator"), Mapping):
        return dict(obj["discriminator"])  # our last.ckpt
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{str(p)!r} holds a {type(obj).__name__}, expected a state_dict")
    prefixed = {
        k[len(DISCRIMINATOR_PREFIX) :]: v
        for k, v in obj.items()
        if k.startswith(DISCRIMINATOR_PREFIX)
    }
    return prefixed or dict(obj)
