"""Tests of lama_video.train.losses and lama_video.train.discriminator on hand-made cases."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lama_video.errors import WeightsError
from lama_video.train.config import LossWeights
from lama_video.train.discriminator import NLayerDiscriminator
from lama_video.train.losses import (
    HRFPerceptualLoss,
    ResNet50Dilated,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    load_hrf_encoder,
    masked_l1_loss,
    r1_penalty,
)

LN2 = math.log(2.0)


def test_default_weights_are_big_lama() -> None:
    w = LossWeights()
    assert (
        w.l1_known,
        w.l1_missing,
        w.adversarial,
        w.gp_coef,
        w.feature_matching,
        w.hrf_perceptual,
    ) == (10, 0, 10, 0.001, 100, 30)


def test_masked_l1_by_hand() -> None:
    target = torch.zeros(1, 3, 2, 2)
    pred = torch.ones(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert masked_l1_loss(target, target, mask).item() == 0.0
    # weights 0 (hole), 10, 10, 10 on |diff| = 1 -> mean 7.5
    assert masked_l1_loss(pred, target, mask).item() == pytest.approx(7.5)
    assert masked_l1_loss(pred, target, mask, weight_missing=2.0).item() == pytest.approx(8.0)
    ignore = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]], dtype=torch.bool)
    assert masked_l1_loss(pred, target, mask, ignore=ignore).item() == pytest.approx(5.0)


def _linear_discriminator(weights: list[float]) -> torch.nn.Conv2d:
    d = torch.nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor(weights).view(1, 3, 1, 1))
    return d


def test_r1_penalty_on_linear_discriminator() -> None:
    # D(x)[i, j] = sum_c w_c x[c, i, j]  =>  d(sum D)/dx[c, i, j] = w_c everywhere, so
    # ||grad||^2 = H * W * sum_c w_c^2 for every sample, whatever x is.
    w = [0.5, -1.0, 2.0]
    d = _linear_discriminator(w)
    real = torch.rand(2, 3, 4, 5, requires_grad=True)
    r1 = r1_penalty(d(real), real)
    assert r1.item() == pytest.approx(4 * 5 * (0.25 + 1 + 4))
    assert r1.requires_grad  # create_graph: the penalty trains D
    r1.backward()
    # d(r1)/dw_c = H * W * 2 w_c
    assert torch.allclose(d.weight.grad.view(-1), torch.tensor(w) * 2 * 20)
    with torch.no_grad():
        assert r1_penalty(d(real), real).item() == 0.0


def test_generator_adversarial_loss() -> None:
    assert generator_adversarial_loss(torch.zeros(2, 1, 3, 3)).item() == pytest.approx(10 * LN2)
    big = generator_adversarial_loss(torch.full((1, 1, 2, 2), 30.0), weight=1.0)
    assert big.item() == pytest.approx(0.0, abs=1e-12)


def test_discriminator_loss_mask_as_fake_target() -> None:
    real_logits = torch.zeros(1, 1, 2, 2)
    fake_logits = torch.tensor([[[[3.0, -1.0], [3.0, -1.0]]]])
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :, :4] = 1  # hole = left half -> left logit column is a "fake" target
    loss, metrics = discriminator_adversarial_loss(real_logits, fake_logits, mask, gp_coef=0.0)
    sp = F.softplus
    expected = LN2 + (sp(torch.tensor(3.0)) + sp(torch.tensor(1.0))).item() / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["d_fake"] == pytest.approx(1.0)
    # ignoring the top row of pixels drops the real term there (max-pooled: the whole top row)
    ignore = torch.zeros(1, 1, 8, 8)
    ignore[..., 0, :] = 1
    loss_i, _ = discriminator_adversarial_loss(
        real_logits, fake_logits, mask, gp_coef=0.0, ignore=ignore
    )
    assert loss_i.item() == pytest.approx(expected - LN2 / 2, rel=1e-6)


def test_discriminator_loss_adds_r1() -> None:
    w = [1.0, 2.0, -2.0]
    d = _linear_discriminator(w)
    real = torch.rand(1, 3, 4, 4, requires_grad=True)
    fake = torch.rand(1, 3, 4, 4)
    mask = torch.ones(1, 1, 4, 4)
    base, _ = discriminator_adversarial_loss(d(real), d(fake), mask, gp_coef=0.0)
    with_gp, metrics = discriminator_adversarial_loss(
        d(real), d(fake), mask, real_images=real, gp_coef=0.001
    )
    assert metrics["r1"] == pytest.approx(16 * 9)
    assert (with_gp - base).item() == pytest.approx(0.001 * 16 * 9, rel=1e-5)


def test_feature_matching() -> None:
    a = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4)]
    assert feature_matching_loss(a, [t.clone() for t in a]).item() == 0.0
    b = [a[0] + 2.0, a[1].clone()]
    assert feature_matching_loss(b, a).item() == pytest.approx((4.0 + 0.0) / 2)
    ignore = torch.zeros(2, 1, 16, 16)
    ignore[..., :8, :] = 1  # top half ignored at every layer
    assert feature_matching_loss(b, a, ignore=ignore).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="layers"):
        feature_matching_loss(a, a[:1])


def test_discriminator_shapes_and_keys() -> None:
    d = NLayerDiscriminator()  # big-lama: input_nc 3, ndf 64, n_layers 4
    logits, feats = d(torch.rand(1, 3, 64, 64))
    # 4x4 convs with padding 2: stride 2 -> n // 2 + 1; stride 1 -> n + 1
    sizes = [33, 17, 9, 5, 6]
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    assert [f.shape[-1] for f in feats] == sizes
    assert logits.shape == (1, 1, 7, 7)
    keys = set(d.state_dict())
    assert {"model0.0.weight", "model1.1.running_mean", "model4.0.weight", "model5.0.bias"} <= keys
    assert not any(k.startswith("model0.1") for k in keys)  # no norm on the first block
    small = NLayerDiscriminator(ndf=8, n_layers=2)
    logits, feats = small(torch.rand(2, 3, 32, 32))
    assert len(feats) == 3 and logits.shape == (2, 1, 11, 11)


def test_resnet50_dilated_shapes_and_key_layout() -> None:
    enc = ResNet50Dilated().eval()
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, 64, 48))
    assert [tuple(f.shape) for f in feats] == [
        (1, 256, 16, 12),
        (1, 512, 8, 6),
        (1, 1024, 8, 6),
        (1, 2048, 8, 6),
    ]
    sd = enc.state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 3, 3)  # deep stem, not a 7x7 conv
    assert sd["conv3.weight"].shape == (128, 64, 3, 3)
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 128, 1, 1)
    assert sd["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert not any(k.startswith(("fc.", "avgpool")) for k in sd)
    # dilation 2 in layer3 and 4 in layer4 (the first block of each keeps half of it)
    assert enc.layer3[0].conv2.dilation == (1, 1) and enc.layer3[1].conv2.dilation == (2, 2)
    assert enc.layer4[0].conv2.dilation == (2, 2) and enc.layer4[2].conv2.dilation == (4, 4)
    assert enc.layer3[0].downsample[0].stride == (1, 1)
    assert sum(p.numel() for p in enc.parameters()) == 23_631_808


def test_hrf_perceptual_loss_random_weights() -> None:
    torch.manual_seed(0)
    loss_fn = HRFPerceptualLoss(ResNet50Dilated(), weight=30.0)
    loss_fn.train()
    assert not loss_fn.encoder.training  # BN statistics are part of the loss: always eval
    target = torch.rand(1, 3, 32, 32)
    assert loss_fn(target, target.clone()).item() == 0.0
    pred = target.clone().requires_grad_(True)
    loss = loss_fn(pred + 0.1 * torch.randn_like(pred), target)
    assert loss.item() > 0
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.encoder.parameters())
    everything = torch.ones(1, 1, 32, 32)
    assert loss_fn(pred.detach() + 0.1, target, ignore=everything).item() == 0.0


def test_hrf_encoder_loading(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(WeightsError, match=r"encoder_epoch_20\.pth.*weight 0"):
        load_hrf_encoder(missing)
    src = ResNet50Dilated()
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    nested = tmp_path / "ade20k" / "ade20k-resnet50dilated-ppm_deepsup"
    nested.mkdir(parents=True)
    torch.save(state, nested / "encoder_epoch_20.pth")
    enc = load_hrf_encoder(tmp_path)  # a folder in LaMa's $TORCH_HOME layout
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert torch.equal(enc.state_dict()["layer2.1.conv2.weight"], state["layer2.1.conv2.weight"])
    state["fc.weight"] = torch.zeros(3)
    del state["layer4.2.bn3.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"missing \['layer4\.2\.bn3\.bias'\].*fc\.weight"):
        load_hrf_encoder(tmp_path / "bad.pth")
