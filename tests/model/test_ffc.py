"""FFC building blocks: branch shapes, parameter layout and the Fourier unit's channel order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lama_video.model import FFC, FFCBlock, FFCResnetBlock, FourierUnit, SpectralTransform
from lama_video.model.ffc import ConcatBranches, split_channels


def test_split_channels_truncates_like_lama() -> None:
    assert split_channels(512, 0.75) == (128, 384)
    assert split_channels(10, 0.75) == (3, 7)  # int(7.5) = 7 global
    assert split_channels(64, 0.0) == (64, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        split_channels(8, 1.5)


def test_ffc_local_only_has_one_conv_and_returns_no_global() -> None:
    ffc = FFC(8, 16, kernel_size=3, padding=1, ratio_gin=0.0, ratio_gout=0.0)
    assert sorted(ffc.state_dict()) == ["convl2l.weight"]
    out_l, out_g = ffc(torch.rand(2, 8, 12, 20))
    assert out_l.shape == (2, 16, 12, 20) and out_g is None


def test_ffc_local_to_split_output() -> None:
    # The last downsampling of big-lama: local input, output split 0.75 global, stride 2.
    ffc = FFC(32, 64, kernel_size=3, stride=2, padding=1, ratio_gin=0.0, ratio_gout=0.75)
    assert {k.split(".")[0] for k in ffc.state_dict()} == {"convl2l", "convl2g"}
    out_l, out_g = ffc(torch.rand(1, 32, 16, 24))
    assert out_l.shape == (1, 16, 8, 12)
    assert out_g is not None and out_g.shape == (1, 48, 8, 12)


def test_ffc_global_to_global_all_four_paths() -> None:
    ffc = FFC(64, 64, kernel_size=3, padding=1, ratio_gin=0.75, ratio_gout=0.75)
    assert {k.split(".")[0] for k in ffc.state_dict()} == {
        "convl2l",
        "convl2g",
        "convg2l",
        "convg2g",
    }
    assert ffc.convl2l is not None and ffc.convl2l.weight.shape == (16, 16, 3, 3)
    assert ffc.convg2l is not None and ffc.convg2l.weight.shape == (16, 48, 3, 3)
    x = (torch.rand(2, 16, 8, 10), torch.rand(2, 48, 8, 10))
    out_l, out_g = ffc(x)
    assert out_l.shape == (2, 16, 8, 10)
    assert out_g is not None and out_g.shape == (2, 48, 8, 10)


def test_ffc_block_and_resnet_block_shapes_and_no_nan() -> None:
    torch.manual_seed(0)
    block = FFCBlock(8, 32, kernel_size=3, stride=2, padding=1, ratio_gin=0.0, ratio_gout=0.75)
    res = FFCResnetBlock(32, ratio_g=0.75)
    with torch.no_grad():
        x_l, x_g = block.eval()(torch.rand(1, 8, 16, 24))
        assert x_g is not None and (x_l >= 0).all() and (x_g >= 0).all()  # BN + ReLU on both
        y_l, y_g = res.eval()((x_l, x_g))
    assert y_l.shape == (1, 8, 8, 12) and y_g is not None and y_g.shape == (1, 24, 8, 12)
    assert torch.isfinite(y_l).all() and torch.isfinite(y_g).all()
    joined = ConcatBranches()((y_l, y_g))
    assert torch.equal(joined[:, :8], y_l) and torch.equal(joined[:, 8:], y_g)


def test_spectral_transform_shapes() -> None:
    st = SpectralTransform(12, 20, stride=2)
    assert st.conv1[0].weight.shape == (10, 12, 1, 1)
    assert st.fu.conv_layer.weight.shape == (20, 20, 1, 1)
    assert st(torch.rand(1, 12, 8, 14)).shape == (1, 20, 4, 7)


def _identity_bn(bn: torch.nn.BatchNorm2d) -> None:
    """Make an eval-mode BatchNorm exactly the identity (running_var + eps == 1)."""
    with torch.no_grad():
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)


def test_fourier_unit_interleaves_real_and_imaginary_per_channel() -> None:
    # Route spectral input channel 1 to output channel 0 and zero everything else. With the
    # released layout (c0.re, c0.im, c1.re, c1.im) channel 1 is Im(F(x_0)): the output's channel 0
    # must be irfft2(ReLU(Im(F(x_0)))), computed here independently with numpy.
    h, w = 6, 10
    fu = FourierUnit(2, 2).eval()
    _identity_bn(fu.bn)
    with torch.no_grad():
        fu.conv_layer.weight.zero_()
        fu.conv_layer.weight[0, 1] = 1.0
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
    with torch.no_grad():
        out = fu(torch.from_numpy(x)).numpy()

    spectrum = np.fft.rfft2(x[0, 0].astype(np.float64), norm="ortho")
    expected0 = np.fft.irfft2(np.maximum(spectrum.imag, 0.0) + 0j, s=(h, w), norm="ortho")
    np.testing.assert_allclose(out[0, 0], expected0, atol=1e-5)
    np.testing.assert_allclose(out[0, 1], 0.0, atol=1e-6)
    # A blocked layout (all re, then all im) would have routed Re(F(x_1)) instead.
    blocked = np.fft.irfft2(
        np.maximum(np.fft.rfft2(x[0, 1], norm="ortho").real, 0.0) + 0j, s=(h, w), norm="ortho"
    )
    assert np.abs(blocked - expected0).max() > 1e-2


def test_fourier_unit_identity_roundtrip_on_odd_width() -> None:
    # conv = identity, BN = identity: output = irfft2(ReLU(re) + i ReLU(im)) of rfft2(x); with a
    # non-negative spectrum (a constant image) that is the input itself, also for odd sizes.
    fu = FourierUnit(3, 3).eval()
    _identity_bn(fu.bn)
    with torch.no_grad():
        fu.conv_layer.weight.copy_(torch.eye(6).reshape(6, 6, 1, 1))
    x = torch.full((1, 3, 5, 7), 0.3)
    with torch.no_grad():
        torch.testing.assert_close(fu(x), x, atol=1e-6, rtol=0)


def test_fourier_unit_keeps_dtype_and_runs_fft_in_fp32() -> None:
    torch.manual_seed(0)
    fu = FourierUnit(4, 4).eval()
    x = torch.rand(1, 4, 8, 12)
    with torch.no_grad():
        ref = fu(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fu(x.bfloat16())
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.05
