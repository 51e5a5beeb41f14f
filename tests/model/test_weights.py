"""Weights loading: every format, strict key checks, safe unpickling, config and shape inference."""

from __future__ import annotations

import builtins
import shutil
import sys
import types
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from lama_video.errors import WeightsError
from lama_video.model import FFCResNetGenerator, GeneratorArch, LoadedModel, load_model
from lama_video.model.weights import (
    arch_from_config,
    cache_dir,
    filter_state_dict,
    find_weights,
    infer_arch,
    resolve_interpolations,
)

TINY_ARCH = GeneratorArch(ngf=16, n_downsampling=3, n_blocks=2, ratio_g=0.75)


# ------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def tiny_state(parity_dir: Path) -> dict[str, torch.Tensor]:
    """The fixture checkpoint's state_dict, keys prefixed ``generator.`` as in best.ckpt."""
    ckpt = torch.load(parity_dir / "tiny_generator.pt", weights_only=True, map_location="cpu")
    return dict(ckpt["state_dict"])


@pytest.fixture(scope="module")
def model_input(parity_dir: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(parity_dir / "expected_model_input.npy"))


@pytest.fixture(scope="module")
def expected_raw(parity_dir: Path) -> np.ndarray:
    return np.load(parity_dir / "expected_raw.npy")


def assert_parity(loaded: LoadedModel, x: torch.Tensor, expected: np.ndarray) -> None:
    assert loaded.kind == "generator"
    assert not loaded.module.training
    with torch.no_grad():
        y = loaded.module(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-5)


@contextmanager
def fake_modules(*classes: type) -> Iterator[None]:
    """Make ``classes`` picklable under their (fake) ``__module__`` names, then forget them."""
    added = []
    for cls in classes:
        parts = cls.__module__.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name not in sys.modules:
                sys.modules[name] = types.ModuleType(name)
                added.append(name)
        setattr(sys.modules[cls.__module__], cls.__name__, cls)
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


def lightning_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A best.ckpt look-alike: Lightning 1.x entries, evaluator tensors, callback class as key."""

    class ModelCheckpoint:
        pass

    class AttributeDict(dict):
        pass

    for cls, module in (
        (ModelCheckpoint, "pytorch_lightning.callbacks.model_checkpoint"),
        (AttributeDict, "pytorch_lightning.utilities.parsing"),
    ):
        cls.__module__, cls.__qualname__ = module, cls.__name__
    full = dict(state)
    full["val_evaluator.scores.ssim.weight"] = torch.rand(3)
    full["test_evaluator.scores.lpips.net.w"] = torch.rand(2, 2)
    return {
        "epoch": 39,
        "global_step": 1000,
        "pytorch-lightning_version": "1.2.9",
        "state_dict": full,
        "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.9), "monitor": "x"}},
        "hyper_parameters": AttributeDict(lr=1e-3, sizes=[1, 2]),
        "lr_schedulers": [],
        "_classes": (ModelCheckpoint, AttributeDict),
    }


def save_lightning(ckpt: dict[str, Any], path: Path) -> None:
    classes = ckpt.pop("_classes")
    with fake_modules(*classes):
        torch.save(ckpt, path)


def official_folder(root: Path, parity_dir: Path, state: dict[str, torch.Tensor]) -> Path:
    folder = root / "big-lama"
    (folder / "models").mkdir(parents=True)
    shutil.copy(parity_dir / "config.yaml", folder / "config.yaml")
    save_lightning(lightning_checkpoint(state), folder / "models" / "best.ckpt")
    return folder


# ------------------------------------------------------------------------------------ formats


def test_fixture_checkpoint_with_its_config_matches_official_output(
    parity_dir: Path, model_input: torch.Tensor, expected_raw: np.ndarray
) -> None:
    loaded = load_model(parity_dir / "tiny_generator.pt")
    assert loaded.arch == TINY_ARCH  # read from the config.yaml beside it
    assert loaded.spec.url is None and loaded.path == parity_dir / "tiny_generator.pt"
    assert_parity(loaded, model_input, expected_raw)


def test_loaded_model_inpaint_reproduces_official_png_pipeline(parity_dir: Path) -> None:
    image = cv2.cvtColor(cv2.imread(str(parity_dir / "input.png")), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(str(parity_dir / "input_mask.png"), cv2.IMREAD_GRAYSCALE)
    h, w = mask.shape
    pad = ((0, -h % 8), (0, -w % 8))
    image = np.pad(image, (*pad, (0, 0)), mode="symmetric").astype(np.float32) / 255
    mask = (np.pad(mask, pad, mode="symmetric") > 0).astype(np.float32)
    loaded = load_model(parity_dir / "tiny_generator.pt")
    with torch.no_grad():
        out = loaded.inpaint(
            torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(mask)[None, None]
        )
    result = out[0].permute(1, 2, 0).numpy()[:h, :w]
    np.testing.assert_allclose(result, np.load(parity_dir / "expected_output.npy"), atol=1e-5)


def test_official_folder_with_lightning_checkpoint(
    tmp_path: Path,
    parity_dir: Path,
    tiny_state: dict,
    model_input: torch.Tensor,
    expected_raw: np.ndarray,
) -> None:
    folder = official_folder(tmp_path, parity_dir, tiny_state)
    loaded = load_model(folder)  # evaluator keys ignored, Lightning types mapped to stand-ins
    assert loaded.arch == TINY_ARCH
    assert loaded.spec.format == "lama_folder"
    assert_parity(loaded, model_input, expected_raw)
    # The checkpoint path itself finds its config one level up (models/best.ckpt layout).
    assert load_model(folder / "models" / "best.ckpt").arch == TINY_ARCH


def test_official_zip(
    tmp_path: Path,
    parity_dir: Path,
    tiny_state: dict,
    model_input: torch.Tensor,
    expected_raw: np.ndarray,
) -> None:
    folder = official_folder(tmp_path / "src", parity_dir, tiny_state)
    archive = tmp_path / "big-lama.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, f.relative_to(folder.parent).as_posix())
    loaded = load_model(archive)
    assert loaded.spec.format == "lama_zip" and loaded.arch == TINY_ARCH
    assert_parity(loaded, model_input, expected_raw)


def test_plain_state_dict_without_config_infers_architecture(
    tmp_path: Path, tiny_state: dict, model_input: torch.Tensor, expected_raw: np.ndarray
) -> None:
    plain = filter_state_dict(tiny_state)
    path = tmp_path / "generator.pth"
    torch.save(plain, path)
    loaded = load_model(path)
    assert loaded.arch == TINY_ARCH
    assert_parity(loaded, model_input, expected_raw)


def test_inferred_architecture_equals_config(parity_dir: Path, tiny_state: dict) -> None:
    config = yaml.safe_load((parity_dir / "config.yaml").read_text())
    assert infer_arch(filter_state_dict(tiny_state)) == arch_from_config(config) == TINY_ARCH
    # And for the real big-lama layout, from shapes only (meta tensors: no memory).
    with torch.device("meta"):
        big = FFCResNetGenerator().state_dict()
    assert infer_arch(big) == GeneratorArch()


def test_safetensors(
    tmp_path: Path, tiny_state: dict, model_input: torch.Tensor, expected_raw: np.ndarray
) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "big-lama.safetensors"
    save_file({k: v.contiguous() for k, v in filter_state_dict(tiny_state).items()}, str(path))
    loaded = load_model(path)
    assert loaded.spec.format == "safetensors"
    assert_parity(loaded, model_input, expected_raw)


def test_safetensors_missing_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(WeightsError, match="pip install safetensors"):
        load_model(path)


class _JitWrapperLike(nn.Module):
    """What LaMa's bin/to_jit.py exports: (image, mask) -> the blended image."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        predicted = self.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * predicted + (1 - mask) * image


def _traced_export(generator: nn.Module, path: Path) -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    example = (torch.rand(1, 3, 120, 120), torch.rand(1, 1, 120, 120))  # as LaMa's to_jit.py
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / jit deprecation warnings
        traced = torch.jit.trace(_JitWrapperLike(generator), example)
        torch.jit.save(traced, str(path))
    return traced


def test_torchscript_export_is_read_as_data(tmp_path: Path, parity_dir: Path) -> None:
    """big-lama.pt's tensors become our generator: same output as running the file, no code run."""
    generator = load_model(parity_dir / "tiny_generator.pt")
    path = tmp_path / "big-lama.pt"
    traced = _traced_export(generator.module, path)
    loaded = load_model(path)
    assert loaded.kind == "generator" and loaded.arch == generator.arch
    image = torch.rand(2, 3, 64, 88)
    mask = (torch.rand(2, 1, 64, 88) > 0.7).float()
    with torch.no_grad():
        got = loaded.inpaint(image, mask)
        want = generator.inpaint(image, mask)
        ran = torch.cat([traced(image[i : i + 1], mask[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got, ran, rtol=0, atol=1e-5)
    assert torch.equal(got[mask.expand_as(got) == 0], image[mask.expand_as(image) == 0])


def test_torchscript_that_is_not_plain_data_needs_trust(tmp_path: Path) -> None:
    """A scripted module without generator tensors cannot be converted: it runs only if trusted."""

    class Blend(nn.Module):
        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return (1 - mask) * image + mask * 0.5

    path = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(Blend()), str(path))
    with pytest.raises(WeightsError, match="--trust-checkpoint"):
        load_model(path)
    loaded = load_model(path, trust_checkpoint=True)
    assert loaded.kind == "torchscript_blended" and loaded.arch is None
    image, mask = torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16)
    assert torch.allclose(loaded.inpaint(image, mask), torch.full_like(image, 0.5))


# ------------------------------------------------------------------------------ bad files


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(WeightsError, match="not a weights file"):
        load_model(path)


def test_truncated_checkpoint_is_refused(tmp_path: Path, parity_dir: Path) -> None:
    data = (parity_dir / "tiny_generator.pt").read_bytes()
    path = tmp_path / "best.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match=r"corrupt or truncated|not a weights file"):
        load_model(path)


def test_corrupt_zip_member_is_refused(tmp_path: Path, parity_dir: Path) -> None:
    data = bytearray((parity_dir / "tiny_generator.pt").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\x00" * 4096  # inside a tensor record
    path = tmp_path / "best.ckpt"
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        load_model(path)


def _save_variant(tmp_path: Path, state: dict) -> Path:
    path = tmp_path / "variant.ckpt"
    torch.save({"state_dict": state}, path)
    return path


def test_missing_key_is_named(tmp_path: Path, tiny_state: dict) -> None:
    state = dict(tiny_state)
    del state["generator.model.5.conv1.ffc.convg2g.fu.conv_layer.weight"]
    with pytest.raises(WeightsError, match=r"1 missing keys \(model\.5\.conv1\.ffc\.convg2g\.fu"):
        load_model(_save_variant(tmp_path, state), config=None)


def test_unexpected_key_is_named(tmp_path: Path, tiny_state: dict) -> None:
    state = dict(tiny_state)
    state["generator.model.99.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"unexpected keys \(model\.99\.weight\)"):
        load_model(_save_variant(tmp_path, state))


def test_wrong_shape_is_named(tmp_path: Path, tiny_state: dict) -> None:
    state = dict(tiny_state)
    state["generator.model.18.bias"] = torch.zeros(4)  # the tiny model's output conv
    with pytest.raises(WeightsError, match=r"wrong shape \(model\.18\.bias \(4,\) != \(3,\)\)"):
        load_model(_save_variant(tmp_path, state), config=None)


def test_foreign_key_outside_generator_is_refused(tmp_path: Path, tiny_state: dict) -> None:
    state = dict(tiny_state)
    state["optimizer.momentum"] = torch.zeros(1)
    with pytest.raises(WeightsError, match=r"optimizer\.momentum"):
        load_model(_save_variant(tmp_path, state))


def test_filter_state_dict_is_pure_and_drops_training_modules(tiny_state: dict) -> None:
    state = dict(tiny_state)
    state["val_evaluator.scores.x"] = torch.zeros(1)
    state["discriminator.model0.weight"] = torch.zeros(1)
    state["loss_resnet_pl.impl.w"] = torch.zeros(1)
    before = list(state)
    out = filter_state_dict(state)
    assert list(state) == before
    assert set(out) == {k.removeprefix("generator.") for k in tiny_state}


# --------------------------------------------------------------------------- untrusted pickles


class _Evil:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_malicious_pickle_is_refused_and_does_not_run(tmp_path: Path, tiny_state: dict) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": tiny_state, "extra": _Evil(marker)}, path)
    with pytest.raises(WeightsError, match=r"object (builtins\.)?exec .*--trust-checkpoint"):
        load_model(path)
    assert not marker.exists()


class TrainingState:
    """A harmless but unknown training object."""

    def __init__(self) -> None:
        self.step = 3


def test_unknown_type_needs_trust_checkpoint(
    tmp_path: Path, tiny_state: dict, model_input: torch.Tensor, expected_raw: np.ndarray
) -> None:
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": tiny_state, "trainer": TrainingState()}, path)
    with pytest.raises(WeightsError, match=r"TrainingState.*--trust-checkpoint"):
        load_model(path)
    assert_parity(load_model(path, trust_checkpoint=True), model_input, expected_raw)


# ------------------------------------------------------------------------ config and registry


def test_resolve_interpolations() -> None:
    cfg = {
        "a": {"x": 3, "path": "/data"},
        "generator": {
            "n": "${a.x}",
            "text": "${a.path}/train",
            "env": "${env:HOME}",
            "nested": {"m": "${generator.n}"},
        },
    }
    gen = resolve_interpolations(cfg, "generator")
    assert gen == {"n": 3, "text": "/data/train", "env": "${env:HOME}", "nested": {"m": 3}}
    with pytest.raises(WeightsError, match="missing key"):
        resolve_interpolations({"generator": {"n": "${a.nope}"}}, "generator")
    with pytest.raises(WeightsError, match="cycle"):
        resolve_interpolations(
            {"generator": {"p": "${generator.q}", "q": "${generator.p}"}}, "generator"
        )


def test_fixture_config_resolves_to_big_lama_ratios(parity_dir: Path) -> None:
    config = yaml.safe_load((parity_dir / "config.yaml").read_text())
    gen = resolve_interpolations(config, "generator")
    assert gen["downsample_conv_kwargs"]["ratio_gin"] == 0
    assert gen["downsample_conv_kwargs"]["ratio_gout"] == 0
    assert gen["resnet_conv_kwargs"]["ratio_gout"] == 0.75


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        (None, "kind", "pix2pixhd_global"),
        (None, "add_out_act", "tanh"),
        ("resnet_conv_kwargs", "enable_lfu", True),
        ("init_conv_kwargs", "ratio_gout", 0.5),
        (None, "unknown_knob", 1),
    ],
)
def test_unsupported_generator_config_is_refused(
    parity_dir: Path, section: str | None, key: str, value: Any
) -> None:
    config = yaml.safe_load((parity_dir / "config.yaml").read_text())
    target = config["generator"] if section is None else config["generator"][section]
    target[key] = value
    with pytest.raises(WeightsError, match="unsupported generator setting"):
        arch_from_config(config)


def test_registry_name_uses_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parity_dir: Path
) -> None:
    monkeypatch.setenv("LAMA_VIDEO_HOME", str(tmp_path))
    assert cache_dir() == tmp_path
    assert find_weights("big-lama") is None
    with pytest.raises(WeightsError, match="lama-video weights download big-lama"):
        load_model("big-lama")
    with pytest.raises(WeightsError, match="unknown weights name"):
        find_weights("huge-lama")
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "nope.ckpt")
    # An unpacked official folder in the cache is found by name.
    folder = tmp_path / "big-lama"
    (folder / "models").mkdir(parents=True)
    shutil.copy(parity_dir / "config.yaml", folder / "config.yaml")
    shutil.copy(parity_dir / "tiny_generator.pt", folder / "models" / "best.ckpt")
    assert find_weights("big-lama") == folder
    loaded = load_model("big-lama")
    assert loaded.spec.name == "big-lama" and loaded.arch == TINY_ARCH  # config wins
