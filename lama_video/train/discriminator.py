"""The PatchGAN discriminator LaMa trains against (pix2pixHD ``NLayerDiscriminator``).

Layout as in LaMa's ``saicinpainting/training/modules/pix2pixhd.py`` with the big-lama settings
(``configs/training/discriminator/pix2pixhd_nlayer.yaml``: input_nc 3, ndf 64, n_layers 4):
blocks ``model0`` .. ``model{n_layers+1}``, each an ``nn.Sequential`` of 4x4 convolutions
(padding 2), BatchNorm (not on the first block) and LeakyReLU(0.2). The attribute names are kept
so a LaMa discriminator state_dict (``discriminator.model0.0.weight`` ...) loads into it.
"""

from __future__ import annotations

import torch
from torch import nn


class NLayerDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch, plus the intermediate activations.

    Channels double per block from ``ndf`` up to 512; the first ``n_layers`` blocks have stride 2,
    the last two stride 1. For a 256x256 input with the defaults the logit map is 19x19 (each logit
    sees a 190-px patch).

    Args:
        input_nc: channels of the images judged (3 for RGB).
        ndf: channels of the first block.
        n_layers: number of stride-2 blocks.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers = n_layers
        kernel, pad = 4, 2  # pix2pixHD: padw = ceil((4 - 1) / 2)
        blocks: list[nn.Sequential] = [
            nn.Sequential(
                nn.Conv2d(input_nc, ndf, kernel, stride=2, padding=pad),
                nn.LeakyReLU(0.2, inplace=True),
            )
        ]
        channels = ndf
        for i in range(1, n_layers + 1):
            prev, channels = channels, min(channels * 2, 512)
            stride = 2 if i < n_layers else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(prev, channels, kernel, stride=stride, padding=pad),
                    nn.BatchNorm2d(channels),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
        blocks.append(nn.Sequential(nn.Conv2d(channels, 1, kernel, stride=1, padding=pad)))
        for i, block in enumerate(blocks):
            self.add_module(f"model{i}", block)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Judge a batch of images.

        Args:
            x: (N, input_nc, H, W) float, images in [0, 1].

        Returns:
            ``(logits, features)``: logits (N, 1, h, w) (positive = real); features, the output of
            every block but the last (``n_layers + 1`` tensors), for feature matching.
        """
        features: list[torch.Tensor] = []
        for i in range(self.n_layers + 2):
            x = getattr(self, f"model{i}")(x)
            features.append(x)
        return features[-1], features[:-1]
