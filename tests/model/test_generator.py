"""FFCResNetGenerator / big_lama: released key layout, parameter count, shapes, parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lama_video.model import FFCResNetGenerator, big_lama

PARITY_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "lama-parity"
# The parity fixture's tiny generator (tests/fixtures/README.md): big-lama settings, narrower.
TINY_KWARGS = {"ngf": 16, "n_downsampling": 3, "n_blocks": 2, "ratio_g": 0.75}


@pytest.fixture(scope="module")
def big_lama_meta() -> FFCResNetGenerator:
    """big_lama() built once, on the meta device (shapes only, no memory)."""
    with torch.device("meta"):
        return big_lama()


@pytest.fixture(scope="module")
def tiny_loaded() -> FFCResNetGenerator:
    """The parity fixture's tiny generator with its weights, in eval mode."""
    model = FFCResNetGenerator(**TINY_KWARGS)
    ckpt = torch.load(PARITY_DIR / "tiny_generator.pt", weights_only=True, map_location="cpu")
    state = {k.removeprefix("generator."): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def test_big_lama_state_dict_matches_released_layout(big_lama_meta: FFCResNetGenerator) -> None:
    ref = json.loads((PARITY_DIR / "big_lama_state_dict_shapes.json").read_text())
    ours = [
        [key, list(t.shape), str(t.dtype).removeprefix("torch.")]
        for key, t in big_lama_meta.state_dict().items()
    ]
    assert len(ours) == ref["num_entries"] == 989
    assert ours == ref["entries"]  # same keys, same order, same shapes and dtypes


def test_big_lama_parameter_count(big_lama_meta: FFCResNetGenerator) -> None:
    n_params = sum(p.numel() for p in big_lama_meta.parameters())
    assert n_params == 50_975_875
    assert all(p.requires_grad for p in big_lama_meta.parameters())


def test_tiny_parity_with_official_output(tiny_loaded: FFCResNetGenerator) -> None:
    x = torch.from_numpy(np.load(PARITY_DIR / "expected_model_input.npy"))
    expected = np.load(PARITY_DIR / "expected_raw.npy")
    with torch.no_grad():
        y = tiny_loaded(x)
    assert y.shape == (1, 3, 64, 88)
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-5)


def test_train_mode_batchnorm_breaks_parity(tiny_loaded: FFCResNetGenerator) -> None:
    # The fixture's BN statistics are far from identity: eval mode really matters.
    x = torch.from_numpy(np.load(PARITY_DIR / "expected_model_input.npy"))
    expected = np.load(PARITY_DIR / "expected_raw.npy")
    model = FFCResNetGenerator(**TINY_KWARGS)
    model.load_state_dict(tiny_loaded.state_dict())
    with torch.no_grad():
        y = model.train()(x)
    assert np.abs(y.numpy() - expected).max() > 1e-2


@pytest.mark.parametrize("hw", [(32, 56), (48, 24)])
def test_forward_non_square_shapes_and_range(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = FFCResNetGenerator(ngf=8, n_downsampling=3, n_blocks=1).eval()
    x = torch.rand(2, 4, *hw)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, *hw)
    assert torch.isfinite(y).all()
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_batch_items_independent_in_eval(tiny_loaded: FFCResNetGenerator) -> None:
    torch.manual_seed(1)
    x = torch.rand(3, 4, 24, 40)
    with torch.no_grad():
        batched = tiny_loaded(x)
        single = torch.cat([tiny_loaded(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)


def test_rejects_size_not_multiple_of_8() -> None:
    model = FFCResNetGenerator(ngf=8, n_downsampling=3, n_blocks=0).eval()
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 4, 61, 83))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\)"):
        model(torch.rand(1, 3, 64, 88))


def test_bf16_autocast_forward_is_close(tiny_loaded: FFCResNetGenerator) -> None:
    x = torch.from_numpy(np.load(PARITY_DIR / "expected_model_input.npy"))
    expected = torch.from_numpy(np.load(PARITY_DIR / "expected_raw.npy"))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = tiny_loaded(x)
    assert torch.isfinite(y).all()
    assert (y.float() - expected).abs().max() < 0.05


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_weights_forward_is_close(
    tiny_loaded: FFCResNetGenerator, dtype: torch.dtype
) -> None:
    # Whole model cast (no autocast): the Fourier unit still runs its FFTs in float32.
    model = FFCResNetGenerator(**TINY_KWARGS)
    model.load_state_dict(tiny_loaded.state_dict())
    model = model.eval().to(dtype)
    x = torch.from_numpy(np.load(PARITY_DIR / "expected_model_input.npy"))
    expected = torch.from_numpy(np.load(PARITY_DIR / "expected_raw.npy"))
    with torch.no_grad():
        y = model(x.to(dtype))
    assert y.dtype == dtype
    assert (y.float() - expected).abs().max() < 0.05
