"""Fast Fourier Convolution building blocks (Chi et al., NeurIPS 2020; used by LaMa, WACV 2022).

An FFC splits its channels into a *local* branch (ordinary 3x3 convolutions) and a *global* branch
whose features pass through a 2-D real FFT, so one layer sees the whole image. Every module here
takes and returns tensors; none reads files or moves itself to a device.

Two-branch features travel between modules as ``(local, global)`` tuples, ``global`` being ``None``
when a layer has no global channels (the stem and the downsampling layers of big-lama).

Submodule attribute names (``convl2l``, ``convg2g``, ``bn_l``, ``fu``, ``conv_layer``...) are those
of the released checkpoints, so their ``state_dict`` keys load without any renaming.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch
from torch import Tensor, nn

# A value flowing through the generator: one tensor, or the (local, global) pair of an FFC.
Features = Tensor | tuple[Tensor, Tensor | None]

# The padding modes torch.nn.Conv2d accepts.
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]

# Device types for which torch.autocast can be switched off explicitly.
_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps", "hpu")


def split_channels(channels: int, ratio_global: float) -> tuple[int, int]:
    """Split ``channels`` into ``(local, global)`` counts the way the released models do.

    Args:
        channels: total channel count.
        ratio_global: fraction in [0, 1] of channels that go to the global (spectral) branch.

    Returns:
        ``(channels - g, g)`` with ``g = int(channels * ratio_global)`` (truncation, as in LaMa).
    """
    if not 0.0 <= ratio_global <= 1.0:
        raise ValueError(f"ratio_global must be in [0, 1], got {ratio_global}")
    n_global = int(channels * ratio_global)
    return channels - n_global, n_global


def autocast_disabled(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """A context in which autocast is off on ``device`` (FFTs run in float32: cuFFT half needs
    power-of-two sizes and loses precision)."""
    if device.type in _AUTOCAST_DEVICES:
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


class FourierUnit(nn.Module):
    """Pointwise convolution in the 2-D Fourier domain (the global receptive field of an FFC).

    ``rfft2`` (orthonormal) of the input; real and imaginary parts become channels, interleaved per
    input channel (``c0.re, c0.im, c1.re, c1.im, ...``, the order the released weights expect); 1x1
    conv + BN + ReLU on those ``2C`` channels; back to complex and ``irfft2`` to the input size.

    The FFTs always run in float32 with autocast disabled, whatever the input dtype; the spectral
    convolution runs in the module's dtype (or under the caller's autocast); the output has the
    input's dtype.
    """

    def __init__(self, in_channels: int, out_channels: int, *, groups: int = 1) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(
            in_channels * 2, out_channels * 2, kernel_size=1, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) float -> (B, C_out, H, W), same dtype as ``x``."""
        b, _, h, w = x.shape
        with autocast_disabled(x.device):
            spec = torch.fft.rfftn(
                x.float(), dim=(-2, -1), norm="ortho"
            )  # (B, C, H, W//2+1) complex
            # (B, C, H, Wf, 2) -> (B, C, 2, H, Wf) -> (B, 2C, H, Wf): re/im interleaved per channel.
            spec = torch.stack((spec.real, spec.imag), dim=-1).permute(0, 1, 4, 2, 3)
            spec = spec.reshape(b, -1, h, spec.shape[-1])
        spec = spec.to(self.conv_layer.weight.dtype)
        spec = self.relu(self.bn(self.conv_layer(spec)))
        with autocast_disabled(x.device):
            spec = spec.float().reshape(b, -1, 2, h, spec.shape[-1]).permute(0, 1, 3, 4, 2)
            spec_c = torch.complex(spec[..., 0].contiguous(), spec[..., 1].contiguous())
            out = torch.fft.irfftn(spec_c, s=(h, w), dim=(-2, -1), norm="ortho")
        return out.to(x.dtype)


class SpectralTransform(nn.Module):
    """The global-to-global path of an FFC: 1x1 reduce, FourierUnit with a residual, 1x1 expand.

    ``out = conv2(y + fu(y))`` with ``y = ReLU(BN(conv1(x)))``; the half-width bottleneck
    (``out_channels // 2``) follows the released models. The local Fourier unit of the FFC paper is
    not implemented (it is off in every released LaMa model); the loaders reject checkpoints that
    use it.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = out_channels // 2
        self.downsample: nn.Module = nn.AvgPool2d(2, stride=2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, groups=groups, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(hidden, hidden, groups=groups)
        self.conv2 = nn.Conv2d(hidden, out_channels, kernel_size=1, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        y = self.conv1(self.downsample(x))
        return self.conv2(y + self.fu(y))


class FFC(nn.Module):
    """Fast Fourier Convolution: four paths between a local and a global channel group.

    ``out_l = l2l(x_l) + g2l(x_g)`` and ``out_g = l2g(x_l) + g2g(x_g)``; l2l, l2g and g2l are
    ordinary convolutions (reflect padding, no bias), g2g is a :class:`SpectralTransform`. A path
    whose input or output group is empty does not exist (its attribute is ``None``: no weights).

    Args:
        in_channels / out_channels: total channels (local + global).
        kernel_size, stride, padding, dilation: of the three spatial convolutions.
        ratio_gin / ratio_gout: fraction of input / output channels in the global group.
        padding_mode: padding of the spatial convolutions ("reflect" in the released models).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        padding_mode: PaddingMode = "reflect",
    ) -> None:
        super().__init__()
        in_l, in_g = split_channels(in_channels, ratio_gin)
        out_l, out_g = split_channels(out_channels, ratio_gout)
        self.in_channels = (in_l, in_g)
        self.out_channels = (out_l, out_g)

        def spatial(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(
                cin,
                cout,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                bias=False,
                padding_mode=padding_mode,
            )

        self.convl2l = spatial(in_l, out_l)
        self.convl2g = spatial(in_l, out_g)
        self.convg2l = spatial(in_g, out_l)
        self.convg2g = (
            SpectralTransform(in_g, out_g, stride=stride) if in_g > 0 and out_g > 0 else None
        )

    def forward(self, x: Features) -> tuple[Tensor, Tensor | None]:
        """``(x_l (B, in_l, H, W), x_g (B, in_g, H, W) | None)`` or one tensor (all local) ->
        ``(out_l (B, out_l, H', W'), out_g (B, out_g, H', W') | None)``."""
        x_l, x_g = x if isinstance(x, tuple) else (x, None)
        out_l = _sum_paths((self.convl2l, x_l), (self.convg2l, x_g))
        out_g = _sum_paths((self.convl2g, x_l), (self.convg2g, x_g))
        # out_l is None only for ratio_gout == 1, which no released model uses.
        return out_l, out_g  # type: ignore[return-value]


def _sum_paths(*paths: tuple[nn.Module | None, Tensor | None]) -> Tensor | None:
    """Sum ``module(x)`` over the paths whose module and input both exist."""
    total: Tensor | None = None
    for module, x in paths:
        if module is None or x is None:
            continue
        y = module(x)
        total = y if total is None else total + y
    return total


class FFCBlock(nn.Module):
    """FFC followed by BatchNorm and ReLU on each branch (LaMa's ``FFC_BN_ACT``).

    Same arguments as :class:`FFC`. Returns ``(local, global | None)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        padding_mode: PaddingMode = "reflect",
    ) -> None:
        super().__init__()
        self.ffc = FFC(
            in_channels,
            out_channels,
            kernel_size=kernel_size,
            ratio_gin=ratio_gin,
            ratio_gout=ratio_gout,
            stride=stride,
            padding=padding,
            dilation=dilation,
            padding_mode=padding_mode,
        )
        out_l, out_g = self.ffc.out_channels
        self.bn_l = nn.BatchNorm2d(out_l) if out_l > 0 else None
        self.bn_g = nn.BatchNorm2d(out_g) if out_g > 0 else None
        self.act_l = nn.ReLU(inplace=True)
        self.act_g = nn.ReLU(inplace=True)

    def forward(self, x: Features) -> tuple[Tensor, Tensor | None]:
        """Features in, ``(local, global | None)`` out (see :class:`FFC`)."""
        x_l, x_g = self.ffc(x)
        if self.bn_l is not None and x_l is not None:
            x_l = self.act_l(self.bn_l(x_l))
        if self.bn_g is not None and x_g is not None:
            x_g = self.act_g(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    """Residual block of two 3x3 :class:`FFCBlock` s at constant width; no activation after the sum.

    Args:
        channels: total channels (local + global) of input and output.
        ratio_g: fraction of channels in the global group (0.75 in big-lama).
        dilation: of both 3x3 convolutions (padding equals it, so the size is kept).
        padding_mode: of the spatial convolutions.
    """

    def __init__(
        self,
        channels: int,
        *,
        ratio_g: float,
        dilation: int = 1,
        padding_mode: PaddingMode = "reflect",
    ) -> None:
        super().__init__()

        def block() -> FFCBlock:
            return FFCBlock(
                channels,
                channels,
                kernel_size=3,
                padding=dilation,
                dilation=dilation,
                ratio_gin=ratio_g,
                ratio_gout=ratio_g,
                padding_mode=padding_mode,
            )

        self.conv1 = block()
        self.conv2 = block()

    def forward(self, x: Features) -> tuple[Tensor, Tensor | None]:
        """``(local, global)`` -> same shapes."""
        id_l, id_g = x if isinstance(x, tuple) else (x, None)
        x_l, x_g = self.conv2(self.conv1((id_l, id_g)))
        out_l = x_l + id_l
        out_g = x_g if id_g is None else (id_g if x_g is None else x_g + id_g)
        return out_l, out_g


class ConcatBranches(nn.Module):
    """``(local, global)`` -> one tensor ``cat([local, global], dim=1)`` (local channels first)."""

    def forward(self, x: Features) -> Tensor:
        """(B, C_l, H, W), (B, C_g, H, W) | None -> (B, C_l + C_g, H, W)."""
        if not isinstance(x, tuple):
            return x
        x_l, x_g = x
        return x_l if x_g is None else torch.cat([x_l, x_g], dim=1)
