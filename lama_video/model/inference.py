"""The generator's inference form: BatchNorm folded into the convolutions, one dtype, one layout.

In eval mode every BatchNorm of LaMa's generator is a fixed per-channel affine map
``y = s * x + t`` (``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``) applied right after
convolutions, so it can be folded into them: the weights of each output channel scaled by ``s``,
``t`` added as a bias. Where a BatchNorm follows the *sum* of two paths (an FFC's local output is
``l2l(x_l) + g2l(x_g)``, its global output ``l2g(x_l) + g2g(x_g)``), both paths' last
convolutions are scaled and the shift is added once. The result computes the same function to
float32 rounding (about 1e-6 on big-lama) with no BatchNorm left to run.

What this buys is a module that can live in bfloat16 as a whole (weights and activations), with
its FFTs still in float32 (:class:`~lama_video.model.ffc.FourierUnit` casts around them): under
``torch.autocast`` instead, every convolution re-casts its weights and its float32 input on every
call, and the activations bounce between float32 and bfloat16 around each BatchNorm and padding.
On a CPU with AMX, big-lama at 512x512 (2 threads, through the ``Inpainter``) takes 0.26x the
time of the float32 eager module this way, against 0.51x under autocast
(``bench/model_bench.py --compare-official``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lama_video.model.ffc import FFCBlock, FourierUnit, SpectralTransform
from lama_video.model.generator import FFCResNetGenerator


def _affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """``(scale, shift)`` of an eval-mode BatchNorm (running statistics)."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def _fold_into(convs: Sequence[nn.Module], bn: nn.Module) -> None:
    """Scale the output channels of every conv in ``convs`` (whose outputs are summed before
    ``bn``) by the BatchNorm's scale; add its shift to the first one's bias."""
    if not isinstance(bn, nn.BatchNorm2d):
        raise ValueError(f"expected a BatchNorm2d to fold, got {type(bn).__name__}")
    scale, shift = _affine(bn)
    for i, conv in enumerate(convs):
        if not isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
            raise ValueError(f"cannot fold a BatchNorm into a {type(conv).__name__}")
        w = conv.weight.double()
        # Conv2d weights are (out, in, kh, kw); ConvTranspose2d's are (in, out, kh, kw).
        view = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
        conv.weight.data = (w * scale.view(view)).to(conv.weight.dtype)
        bias = torch.zeros_like(scale) if conv.bias is None else conv.bias.double() * scale
        if i == 0:
            bias = bias + shift
        if conv.bias is None and i == 0:
            conv.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)
        elif conv.bias is not None:
            conv.bias.data = bias.to(conv.bias.dtype)


def fold_batchnorm(generator: FFCResNetGenerator) -> FFCResNetGenerator:
    """An eval-mode copy of ``generator`` with every BatchNorm folded into its convolutions.

    The copy computes the same function as ``generator.eval()`` (to float32 rounding); the
    original is not modified. Its state dict no longer has the released key layout: use it for
    inference only.
    """
    if not isinstance(generator, FFCResNetGenerator):
        raise TypeError(f"expected an FFCResNetGenerator, got {type(generator).__name__}")
    folded = copy.deepcopy(generator).eval()
    with torch.no_grad():
        for module in list(folded.modules()):
            if isinstance(module, FFCBlock):
                _fold_block(module)
            elif isinstance(module, SpectralTransform):
                _fold_into([module.conv1[0]], module.conv1[1])
                module.conv1[1] = nn.Identity()
            elif isinstance(module, FourierUnit):
                _fold_into([module.conv_layer], module.bn)
                module.bn = nn.Identity()  # type: ignore[assignment]
            elif isinstance(module, nn.Sequential):
                for i in range(len(module) - 1):
                    conv, bn = module[i], module[i + 1]
                    if isinstance(conv, nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
                        _fold_into([conv], bn)
                        module[i + 1] = nn.Identity()
    leftover = [n for n, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if leftover:
        raise ValueError(f"BatchNorm layers this fold does not know: {', '.join(leftover)}")
    return folded


def _fold_block(block: FFCBlock) -> None:
    """Fold an FFCBlock's two BatchNorms into the last convolution of each path feeding them."""
    ffc = block.ffc
    if block.bn_l is not None:
        local = [c for c in (ffc.convl2l, ffc.convg2l) if c is not None]
        _fold_into(local, block.bn_l)
        block.bn_l = nn.Identity()  # type: ignore[assignment]
    if block.bn_g is not None:
        spectral = ffc.convg2g.conv2 if ffc.convg2g is not None else None
        glob = [c for c in (ffc.convl2g, spectral) if c is not None]
        _fold_into(glob, block.bn_g)
        block.bn_g = nn.Identity()  # type: ignore[assignment]


def inference_layout(device: torch.device) -> torch.memory_format:
    """The memory layout the inference form runs fastest in on ``device``'s type.

    Channels-last on CPUs (oneDNN's blocked kernels: 0.81-0.86x the time of NCHW for big-lama at
    512x512); NCHW elsewhere. On CUDA, measured on H200s (big-lama, cuDNN 9.19, 2026-12-04, two
    leases, ``bench/gpu_forms.py``): channels-last ran at 0.71-0.93x NCHW's frames/s in every
    batched case of the first (batches of 4 and 8 at 512x512, 480x856 and 1080p, fp32 and bf16;
    4x1080p whole bf16: 17.1 vs 23.8) and at 0.71-1.02x in the second (equal at 8x512x512 whole
    bf16); batch 1 is launch-bound and went either way. The FourierUnits' FFTs and reshapes work
    on NCHW, so a channels-last tensor is converted back and forth."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def inference_form(
    generator: FFCResNetGenerator,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    *,
    channels_last: bool | None = None,
) -> FFCResNetGenerator:
    """``generator`` folded (:func:`fold_batchnorm`), on ``device``, in ``dtype``, in channels-last
    layout or not (``None``: the layout :func:`inference_layout` picks for ``device``). The FFTs
    inside stay in float32 whatever ``dtype`` is. Feed it inputs of the same dtype and layout."""
    folded = fold_batchnorm(generator).to(device=device, dtype=dtype)
    if channels_last is None:
        channels_last = inference_layout(device) == torch.channels_last
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return folded.requires_grad_(False)
