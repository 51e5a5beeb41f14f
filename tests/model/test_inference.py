"""The generator's inference form: BatchNorm folding keeps parity; bf16 stays near fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lama_video.model import FFCResNetGenerator
from lama_video.model.inference import fold_batchnorm, inference_form, inference_layout


@pytest.fixture(scope="module")
def official(parity_dir: Path) -> tuple[FFCResNetGenerator, torch.Tensor, np.ndarray]:
    """The parity fixture's tiny generator (BatchNorm statistics far from identity), its input
    and the official LaMa code's raw output for it."""
    model = FFCResNetGenerator(ngf=16, n_downsampling=3, n_blocks=2, ratio_g=0.75)
    ckpt = torch.load(parity_dir / "tiny_generator.pt", weights_only=True, map_location="cpu")
    state = {k.removeprefix("generator."): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state, strict=True)
    x = torch.from_numpy(np.load(parity_dir / "expected_model_input.npy"))
    return model.eval(), x, np.load(parity_dir / "expected_raw.npy")


def test_folded_generator_keeps_parity_with_the_official_output(official) -> None:
    model, x, expected = official
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        y = folded(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-5)
    # The original is untouched: same keys (the released layout), same values.
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_folding_uses_the_running_statistics_not_the_batch(official) -> None:
    # A generator left in train mode is folded as its eval mode computes (the statistics of
    # the checkpoint, not of the batch): folding a train-mode copy gives the official output.
    model, x, expected = official
    train_copy = FFCResNetGenerator(ngf=16, n_downsampling=3, n_blocks=2, ratio_g=0.75)
    train_copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        y = fold_batchnorm(train_copy.train())(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-5)


def test_channels_last_fp32_form_matches_and_bf16_form_is_close(official) -> None:
    model, x, expected = official
    cpu = torch.device("cpu")
    fp32 = inference_form(model, cpu, torch.float32)
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in fp32.parameters())
    assert fp32.model[1].ffc.convl2l.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y32 = fp32(x.contiguous(memory_format=torch.channels_last))
        y16 = inference_form(model, cpu, torch.bfloat16)(
            x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        )
    np.testing.assert_allclose(y32.numpy(), expected, rtol=0, atol=1e-5)
    assert y16.dtype == torch.bfloat16
    diff = np.abs(y16.float().numpy() - expected)
    # bf16 has an 8-bit significand (relative step 2^-8 = 0.0039; the output lies in [0, 1] and
    # is itself bf16). Measured: mean 2.3e-3 / max 1.2e-2; the eager module under bf16 autocast
    # (the path before the inference form) gives 2.7e-3 / 1.5e-2 on the same input.
    assert diff.mean() < 3.5e-3 and diff.max() < 2.5e-2, (diff.mean(), diff.max())
    assert diff.max() > 0  # it really ran in bf16


def test_layout_is_channels_last_on_cpu_only() -> None:
    # Measured on an H200: channels-last ran at 0.71-0.93x NCHW's speed in every batched case.
    assert inference_layout(torch.device("cpu")) == torch.channels_last
    assert inference_layout(torch.device("cuda", 0)) == torch.contiguous_format
    assert inference_layout(torch.device("mps")) == torch.contiguous_format


def test_nchw_form_matches_too(official) -> None:
    # What CUDA runs (NCHW): the same function, in the layout the input comes in.
    model, x, expected = official
    nchw = inference_form(model, torch.device("cpu"), torch.float32, channels_last=False)
    assert nchw.model[1].ffc.convl2l.weight.is_contiguous()
    assert not nchw.model[1].ffc.convl2l.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = nchw(x)
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-5)


def test_fold_rejects_what_it_does_not_know() -> None:
    with pytest.raises(TypeError, match="FFCResNetGenerator"):
        fold_batchnorm(nn.Conv2d(1, 1, 1))  # type: ignore[arg-type]


def test_gpu_bench_times_the_form_the_engine_runs(official, monkeypatch) -> None:
    # bench/gpu_bench.py takes the engine's form from the Inpainter itself; if the Inpainter's
    # internals move, the bench must not silently time something else.
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "bench" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_bench", bench)  # its dataclasses look themselves up
    spec.loader.exec_module(bench)
    model, x, expected = official
    cpu = torch.device("cpu")
    engine = bench.make_runner(model, "engine", "bf16", cpu)
    assert (engine.dtype, engine.memory_format, engine.amp) == (
        torch.bfloat16,
        torch.channels_last,
        None,
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in engine.module.modules())
    eager = bench.make_runner(model, "eager", "bf16", cpu)
    assert eager.module is model and eager.amp == torch.bfloat16
    fp32 = bench.make_runner(model, "engine", "fp32", cpu)
    with torch.no_grad():
        y = fp32.module(x.to(dtype=fp32.dtype, memory_format=fp32.memory_format))
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-5)
