"""The LaMa generator (an FFC ResNet) and :func:`big_lama`, where its released numbers live.

Layout of ``self.model`` (an ``nn.Sequential``; its indices are part of the checkpoint key
names), for ``n_downsampling = d`` and ``n_blocks = b``:

==================  ==================================================================
index               layer
==================  ==================================================================
0                   ReflectionPad2d(3)
1                   stem: 7x7 FFCBlock in -> ngf, local only
2 .. d              3x3 stride-2 FFCBlocks, width x2 each, local only
d + 1               last stride-2 FFCBlock; output split local/global by ``ratio_g``
d + 2 .. d + b + 1  ``b`` FFCResnetBlocks at the bottleneck width
d + b + 2           ConcatBranches (local channels first)
next 3 * d          [ConvTranspose2d(k3, s2, p1, output_padding 1), BatchNorm2d, ReLU] x d
then                ReflectionPad2d(3), Conv2d(ngf -> out, k7), Sigmoid
==================  ==================================================================

All spatial convolutions of the encoder pad by reflection (LaMa ``padding_type='reflect'``); the
transposed convolutions pad with zeros. Because each of the ``d`` stride-2 convolutions rounds
up, the input height and width must be multiples of ``2 ** d`` (8 for big-lama) for the output to
match the input.
"""

from __future__ import annotations

from dataclasses import asdict

from torch import Tensor, nn

from lama_video.model.ffc import ConcatBranches, FFCBlock, FFCResnetBlock
from lama_video.model.registry import BIG_LAMA_ARCH, GeneratorArch


class FFCResNetGenerator(nn.Module):
    """LaMa's image-to-image FFC ResNet: masked image + mask in, full image out.

    Input: ``(N, in_channels, H, W)`` float; for inpainting ``cat([image * (1 - mask), mask], 1)``
    with the image RGB in [0, 1] and the mask in {0, 1} (1 = hole); H and W multiples of
    :attr:`size_multiple`. Output: ``(N, out_channels, H, W)`` in [0, 1] (sigmoid); the caller
    blends ``mask * out + (1 - mask) * image``.

    Args:
        in_channels, out_channels, ngf, n_downsampling, n_blocks, ratio_g, max_features: see
            :class:`GeneratorArch`.
    """

    def __init__(
        self,
        *,
        in_channels: int = 4,
        out_channels: int = 3,
        ngf: int = 64,
        n_downsampling: int = 3,
        n_blocks: int = 18,
        ratio_g: float = 0.75,
        max_features: int = 1024,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, ngf, n_downsampling) < 1 or n_blocks < 0:
            raise ValueError(
                "generator needs in/out channels, ngf, n_downsampling >= 1 and n_blocks >= 0, "
                f"got {in_channels=}, {out_channels=}, {ngf=}, {n_downsampling=}, {n_blocks=}"
            )
        self.arch = GeneratorArch(
            in_channels=in_channels,
            out_channels=out_channels,
            ngf=ngf,
            n_downsampling=n_downsampling,
            n_blocks=n_blocks,
            ratio_g=float(ratio_g),
            max_features=max_features,
        )
        self.size_multiple = 2**n_downsampling

        def width(mult: float) -> int:
            return min(max_features, int(ngf * mult))

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            FFCBlock(in_channels, ngf, kernel_size=7, padding=0, ratio_gin=0.0, ratio_gout=0.0),
        ]
        for i in range(n_downsampling):
            last = i == n_downsampling - 1
            layers.append(
                FFCBlock(
                    width(2**i),
                    width(2 ** (i + 1)),
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    ratio_gin=0.0,
                    # The last downsampling already splits its output for the residual blocks.
                    ratio_gout=ratio_g if last else 0.0,
                )
            )
        bottleneck = width(2**n_downsampling)
        layers += [FFCResnetBlock(bottleneck, ratio_g=ratio_g) for _ in range(n_blocks)]
        layers.append(ConcatBranches())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [
                nn.ConvTranspose2d(
                    width(mult),
                    width(mult / 2),
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                ),
                nn.BatchNorm2d(width(mult / 2)),
                nn.ReLU(inplace=True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7, padding=0),
            nn.Sigmoid(),
        ]
        self.model = nn.Sequential(*layers)

    @classmethod
    def from_arch(cls, arch: GeneratorArch) -> FFCResNetGenerator:
        """Build a generator from a :class:`GeneratorArch` (e.g. one read from a checkpoint)."""
        return cls(**asdict(arch))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) float -> (N, C_out, H, W) in [0, 1]; H, W multiples of 8 (big-lama)."""
        h, w = x.shape[-2:]
        if x.dim() != 4 or x.shape[1] != self.arch.in_channels:
            raise ValueError(
                f"generator input must be (N, {self.arch.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(
                f"generator input height and width must be multiples of {self.size_multiple}, got "
                f"{h}x{w}; pad the image (bottom/right) first"
            )
        return self.model(x)


def big_lama() -> FFCResNetGenerator:
    """The released big-lama generator (random weights; load a checkpoint with ``load_model``).

    Input (N, 4, H, W) float: RGB in [0, 1] times ``1 - mask`` then the mask (1 = hole); H, W
    multiples of 8. Output (N, 3, H, W) RGB in [0, 1].
    """
    return FFCResNetGenerator.from_arch(BIG_LAMA_ARCH)
