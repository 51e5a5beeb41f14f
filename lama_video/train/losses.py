"""LaMa's training losses (``saicinpainting/training/trainers/default.py:generator_loss``).

With the big-lama weights (``configs/training/big-lama.yaml``; paper eq. 5: κ=10, α=30, β=100,
γ=0.001):

* known-pixel L1 (:func:`masked_l1_loss`): ``|pred - image|``, weight 10 outside the hole, 0 in it;
* non-saturating adversarial loss with R1 penalty on reals (:func:`generator_adversarial_loss`,
  :func:`discriminator_adversarial_loss`, :func:`r1_penalty`), weight 10, ``gp_coef`` 0.001; the
  discriminator's target for a fake image is "fake" inside the hole and "real" outside it
  (``mask_as_fake_target``), the mask resized to the logit map with nearest interpolation;
* discriminator feature matching (:func:`feature_matching_loss`), weight 100;
* the high-receptive-field perceptual loss (:class:`HRFPerceptualLoss`) on the ADE20k
  ResNet50-dilated segmentation encoder (:class:`ResNet50Dilated`), weight 30.

Every function takes an optional ``ignore`` mask: pixels that are never a training target (the
object to remove, when a clip's own background is the training data). They are excluded from the
L1, from the discriminator's "real" target, from feature matching and from the perceptual loss;
at the coarser resolutions of the discriminator and the encoder a cell is excluded when any of its
pixels is (max-pooling), so the object never leaks into a target.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lama_video.errors import WeightsError

log = logging.getLogger(__name__)

# ImageNet statistics the ADE20k encoder was trained with (LaMa perceptual.py IMAGENET_MEAN/STD).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

HRF_WEIGHTS_RELPATH = Path("ade20k") / "ade20k-resnet50dilated-ppm_deepsup" / "encoder_epoch_20.pth"
HRF_WEIGHTS_URL = (
    "http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet50dilated-ppm_deepsup/"
    "encoder_epoch_20.pth"
)
# No published checksum of encoder_epoch_20.pth was found (and the file could not be fetched from
# this workplace); set it here once it is known and every load is verified.
HRF_WEIGHTS_SHA256: str | None = None


def _as_float_mask(mask: Tensor, like: Tensor) -> Tensor:
    return mask.to(dtype=like.dtype, device=like.device)


def _size_hw(t: Tensor) -> tuple[int, int]:
    """``tuple(t.shape[-2:])``, typed as the (h, w) it is for the (N, C, h, w) tensors here."""
    return cast(tuple[int, int], tuple(t.shape[-2:]))


def resize_mask(mask: Tensor, size: tuple[int, int], *, mode: str = "nearest") -> Tensor:
    """Resize a (N, 1, H, W) {0, 1} mask to ``size``.

    ``mode="nearest"`` is LaMa's choice for the adversarial target; ``mode="max"`` marks a cell
    when any pixel under it is marked (used for pixels that must never be a target).
    """
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    if mode == "max":
        return F.adaptive_max_pool2d(mask, size)
    return F.interpolate(mask, size=size, mode=mode)


def masked_l1_loss(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    *,
    weight_known: float = 10.0,
    weight_missing: float = 0.0,
    ignore: Tensor | None = None,
) -> Tensor:
    """LaMa's ``masked_l1_loss``: mean of ``|pred - target|`` weighted per pixel.

    Args:
        pred: (N, C, H, W) generator output in [0, 1].
        target: (N, C, H, W) real image in [0, 1].
        mask: (N, 1, H, W) {0, 1}, 1 = hole given to the generator.
        weight_known: weight outside the hole.
        weight_missing: weight inside the hole.
        ignore: (N, 1, H, W) {0, 1}, 1 = pixel that is never a target (weight 0), or None.

    Returns:
        Scalar: ``mean(w * |pred - target|)`` over all elements (not normalised by ``sum(w)``).
    """
    mask = _as_float_mask(mask, pred)
    weights = mask * weight_missing + (1 - mask) * weight_known
    if ignore is not None:
        weights = weights * (1 - _as_float_mask(ignore, pred))
    return (weights * (pred - target).abs()).mean()


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """R1 gradient penalty (Mescheder et al. 2018): ``mean_n ||∇_x Σ D(x_n)||²`` over real images.

    ``real_images`` must have ``requires_grad=True`` before the discriminator saw them. The graph
    is kept (``create_graph``) so the penalty trains the discriminator.

    Returns:
        Scalar tensor (0 when gradients are disabled, e.g. under ``torch.no_grad``).
    """
    if not torch.is_grad_enabled():
        return real_logits.new_zeros(())
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def generator_adversarial_loss(fake_logits: Tensor, *, weight: float = 10.0) -> Tensor:
    """Non-saturating generator loss ``weight * mean(softplus(-D(fake)))`` (every patch counts)."""
    return F.softplus(-fake_logits.float()).mean() * weight


def discriminator_adversarial_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    mask: Tensor,
    *,
    real_images: Tensor | None = None,
    gp_coef: float = 0.001,
    ignore: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """LaMa's ``NonSaturatingWithR1.discriminator_loss`` with ``mask_as_fake_target``.

    ``mean(softplus(-D(real)) + m softplus(D(fake)) + (1 - m) softplus(-D(fake))) + gp_coef R1``
    where ``m`` is the hole mask resized (nearest) to the logit map: known regions of a fake image
    count as real. ``ignore`` cells (max-pooled) are dropped from the real term.

    Args:
        real_logits: (N, 1, h, w) discriminator logits for real images.
        fake_logits: (N, 1, h, w) logits for (detached) generator outputs.
        mask: (N, 1, H, W) {0, 1} holes the generator was given.
        real_images: the real images (with ``requires_grad``) for R1; None = no penalty.
        gp_coef: R1 coefficient.
        ignore: (N, 1, H, W) {0, 1} pixels never taken as real, or None.

    Returns:
        ``(loss, metrics)``; metrics hold floats ``d_real``, ``d_fake`` (mean logits) and ``r1``.
    """
    size = _size_hw(fake_logits)
    real_logits_f, fake_logits_f = real_logits.float(), fake_logits.float()
    m = resize_mask(_as_float_mask(mask, fake_logits_f), size, mode="nearest")
    real_term = F.softplus(-real_logits_f)
    if ignore is not None:
        keep = 1 - resize_mask(_as_float_mask(ignore, real_logits_f), size, mode="max")
        real_term = real_term * keep
    fake_term = m * F.softplus(fake_logits_f) + (1 - m) * F.softplus(-fake_logits_f)
    r1 = r1_penalty(real_logits, real_images) if real_images is not None and gp_coef else None
    loss = (real_term + fake_term).mean()
    if r1 is not None:
        loss = loss + gp_coef * r1
    metrics = {
        "d_real": float(real_logits_f.detach().mean()),
        "d_fake": float(fake_logits_f.detach().mean()),
        "r1": float(r1.detach()) if r1 is not None else 0.0,
    }
    return loss, metrics


def feature_matching_loss(
    fake_features: list[Tensor], real_features: list[Tensor], *, ignore: Tensor | None = None
) -> Tensor:
    """Mean over discriminator layers of the MSE between fake and (detached) real features.

    Args:
        fake_features: per-layer (N, C_l, h_l, w_l) activations for the generator output.
        real_features: the same for the real images (detached here).
        ignore: (N, 1, H, W) {0, 1} pixels whose features are not matched (max-pooled per layer);
            with it each layer's term is ``mean((f - r)^2 * keep)`` (LaMa's masked variant).

    Returns:
        Scalar tensor.
    """
    if len(fake_features) != len(real_features) or not fake_features:
        raise ValueError(
            f"feature matching needs equally many layers, got {len(fake_features)} fake and "
            f"{len(real_features)} real"
        )
    terms = []
    for fake, real in zip(fake_features, real_features, strict=True):
        diff = (fake.float() - real.detach().float()).pow(2)
        if ignore is not None:
            keep = 1 - resize_mask(_as_float_mask(ignore, diff), _size_hw(diff), mode="max")
            diff = diff * keep
        terms.append(diff.mean())
    return torch.stack(terms).mean()


# ----------------------------------------------------------------------------------------------
# ResNet50-dilated (CSAIL semantic-segmentation-pytorch, ``resnet50dilated`` encoder of the
# ``ade20k-resnet50dilated-ppm_deepsup`` model that LaMa's ResNetPL uses).


class _Bottleneck(nn.Module):
    """ResNet bottleneck 1x1 -> 3x3 -> 1x1 (x4), stride and dilation on the 3x3 convolution."""

    expansion = 4

    def __init__(
        self,
        in_ch: int,
        planes: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _stage(
    in_ch: int, planes: int, blocks: int, *, stride: int, first_dilation: int, dilation: int
) -> nn.Sequential:
    out_ch = planes * _Bottleneck.expansion
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
        )
    layers = [
        _Bottleneck(in_ch, planes, stride=stride, dilation=first_dilation, downsample=downsample)
    ]
    layers += [_Bottleneck(out_ch, planes, dilation=dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50Dilated(nn.Module):
    """ResNet-50 with a deep 3-conv stem, output stride 8 (layer3 dilation 2, layer4 dilation 4).

    The CSAIL ``resnet50dilated`` encoder: its ImageNet ResNet-50 has ``conv1`` (3->64, stride 2),
    ``conv2`` (64->64), ``conv3`` (64->128) 3x3 convolutions with BatchNorm ``bn1..bn3``, a 3x3
    stride-2 max-pool, then ``layer1..layer4`` (3, 4, 6, 3 bottlenecks). ``_nostride_dilate`` turns
    the stride-2 3x3 convolutions of layer3/layer4 into stride 1 with dilation 1/2 and every other
    3x3 convolution of those stages into dilation 2/4; the 1x1 shortcut convolutions lose their
    stride. State-dict keys match ``encoder_epoch_20.pth`` (``conv1.weight``,
    ``layer3.0.downsample.0.weight`` ...).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _stage(128, 64, 3, stride=1, first_dilation=1, dilation=1)
        self.layer2 = _stage(256, 128, 4, stride=2, first_dilation=1, dilation=1)
        self.layer3 = _stage(512, 256, 6, stride=1, first_dilation=1, dilation=2)
        self.layer4 = _stage(1024, 512, 3, stride=1, first_dilation=2, dilation=4)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N, 3, H, W) ImageNet-normalised RGB -> the 4 stage outputs.

        Returns:
            [(N, 256, H/4, W/4), (N, 512, H/8, W/8), (N, 1024, H/8, W/8), (N, 2048, H/8, W/8)]
            (sizes rounded up).
        """
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.maxpool(x)
        feats = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            feats.append(x)
        return feats


def default_hrf_weights_path() -> Path:
    """Where the ADE20k encoder weights are looked for when no path is given.

    The LaMa weights' cache folder (:func:`lama_video.model.weights.cache_dir`: ``$LAMA_VIDEO_HOME``
    or the user cache folder) ``/ade20k/ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth``;
    LaMa's own place, ``$TORCH_HOME/ade20k/...``, when the file is there and not in ours.
    """
    from lama_video.model.weights import cache_dir

    ours = cache_dir() / HRF_WEIGHTS_RELPATH
    torch_home = os.environ.get("TORCH_HOME")
    if not ours.exists() and torch_home and (Path(torch_home) / HRF_WEIGHTS_RELPATH).exists():
        return Path(torch_home) / HRF_WEIGHTS_RELPATH
    return ours


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_hrf_encoder(path: str | Path | None = None) -> ResNet50Dilated:
    """Build :class:`ResNet50Dilated` and load the ADE20k weights strictly, frozen and in eval mode.

    Args:
        path: ``encoder_epoch_20.pth`` (or a folder holding LaMa's ``ade20k/...`` layout); None =
            :func:`default_hrf_weights_path`.

    Raises:
        WeightsError: the file is missing, unreadable, fails its checksum or does not match the
            architecture (the first missing/unexpected keys are named).
    """
    p = Path(path) if path is not None else default_hrf_weights_path()
    if p.is_dir():
        nested = p / HRF_WEIGHTS_RELPATH
        p = nested if nested.exists() else p / "encoder_epoch_20.pth"
    if not p.is_file():
        raise WeightsError(
            f"the high-receptive-field perceptual loss needs the ADE20k ResNet50-dilated encoder, "
            f"not found at {str(p)!r}; download {HRF_WEIGHTS_URL} there or pass its path "
            "(--hrf-weights), or turn the loss off (--hrf-weight 0)"
        )
    if HRF_WEIGHTS_SHA256 is not None and _sha256(p) != HRF_WEIGHTS_SHA256:
        raise WeightsError(
            f"{str(p)!r} does not have the sha256 of encoder_epoch_20.pth "
            f"({HRF_WEIGHTS_SHA256[:12]}…); the download is corrupt or another file; "
            "download it again"
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(
            f"cannot read {str(p)!r} as a torch state_dict ({type(err).__name__}: {err}); "
            "expected encoder_epoch_20.pth of ade20k-resnet50dilated-ppm_deepsup"
        ) from err
    if not isinstance(state, dict):
        raise WeightsError(f"{str(p)!r} holds a {type(state).__name__}, expected a state_dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    encoder = ResNet50Dilated()
    expected = encoder.state_dict()
    # Files written by torch < 0.4.1 have no BatchNorm num_batches_tracked buffers; they are unused
    # in eval mode, so they are the only keys allowed to be absent.
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise WeightsError(
            f"{str(p)!r} does not match the ResNet50-dilated encoder: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}; expected "
            "ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth"
        )
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first_line = str(err).splitlines()[0]
        raise WeightsError(f"{str(p)!r} has tensors of the wrong shape: {first_line}") from err
    log.debug("loaded HRF perceptual encoder from %s", p)
    return freeze(encoder)


_M = TypeVar("_M", bound=nn.Module)


def freeze(module: _M) -> _M:
    """Put ``module`` in eval mode with every parameter's ``requires_grad`` off; returns it."""
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module


class HRFPerceptualLoss(nn.Module):
    """LaMa's ``ResNetPL``: ``weight * Σ_layers MSE(φ_l(pred), φ_l(target))`` on a frozen encoder.

    φ is the ADE20k segmentation encoder (:class:`ResNet50Dilated`) applied to ImageNet-normalised
    images; its dilated stages see most of a 256-px crop, which rewards globally consistent fills.
    The target's features are computed without gradients. The encoder stays in eval mode even when
    the module is put in train mode.

    Args:
        encoder: a frozen encoder returning a list of feature maps (:func:`load_hrf_encoder`).
        weight: multiplier (big-lama: 30).
    """

    mean: Tensor  # (1, 3, 1, 1) buffers, registered in __init__
    std: Tensor

    def __init__(self, encoder: nn.Module, *, weight: float = 30.0) -> None:
        super().__init__()
        self.encoder = freeze(encoder)
        self.weight = float(weight)
        mean, std = torch.tensor(_IMAGENET_MEAN), torch.tensor(_IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> HRFPerceptualLoss:
        """Keep the encoder in eval mode (its BatchNorm statistics are part of the loss)."""
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, pred: Tensor, target: Tensor, *, ignore: Tensor | None = None) -> Tensor:
        """Loss between (N, 3, H, W) images in [0, 1]; ``ignore`` (N, 1, H, W) cells are dropped.

        Returns:
            Scalar tensor (already multiplied by ``weight``).
        """
        pred_feats = self.encoder((pred - self.mean) / self.std)
        with torch.no_grad():
            target_feats = self.encoder((target - self.mean) / self.std)
        terms = []
        for fp, ft in zip(pred_feats, target_feats, strict=True):
            diff = (fp.float() - ft.float()).pow(2)
            if ignore is not None:
                keep = 1 - resize_mask(_as_float_mask(ignore, diff), _size_hw(diff), mode="max")
                diff = diff * keep
            terms.append(diff.mean())
        return torch.stack(terms).sum() * self.weight
