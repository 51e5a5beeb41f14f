"""big-lama-sized random generators, their test case and the tolerances of reduced precision
against fp32 (shared by the CPU tests of the inference form and the GPU checks)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from lama_video.model import big_lama


@dataclass(frozen=True)
class Tol:
    """Largest allowed ``|output - reference|`` inside the holes, in uint8 levels (0..255): the
    mean, the 99th percentile and the maximum over every hole pixel and channel."""

    mean: float
    p99: float
    max: int


# big-lama-sized generator (51 M parameters, 18 residual blocks) with seeded random weights made
# to behave like trained ones (BatchNorm statistics calibrated, see big_lama_random), on a batch
# of two 512x512 crops with a 192x256 hole each (~295,000 compared values). Errors grow with
# depth. Measured on CPU (torch 2.13 autocast) against CPU fp32: bf16 on exactly this case mean
# 2.7 / p99 9 / max 20 (the inference form, whole-bf16 with the BatchNorms folded: 2.5 / 9 /
# 18); fp16 on a 192x192 case (CPU fp16 is too slow for more) mean 0.33 / p99 1
# / max 2, i.e. ~7x below bf16 as its 3 extra significand bits predict. The bounds leave about 2x
# (means) to 3x (max) room for other kernels, and sit far below what a broken reduced-precision
# path gives (overflow, wrong dtype: tens of levels on average). The hole holds real structure
# (std ~45 levels; asserted below), so a flat output does not pass by luck.
BIG_TOL = {
    # 18 residual blocks accumulate more rounding than the tiny model: a few values may move by 2.
    "fp32": Tol(mean=0.05, p99=1, max=3),
    "tf32": Tol(mean=1.0, p99=4, max=12),
    "fp16": Tol(mean=1.0, p99=4, max=12),
    "bf16": Tol(mean=5.0, p99=20, max=64),
}


def big_case(n: int = 2, side: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded textured frames (n, side, side, 3) uint8 and holes (n, side, side) bool: a
    centred box (3/8 x 1/2 of the side), shifted a little per frame."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    frames = np.empty_like(noise)
    for i in range(n):
        smooth = cv2.GaussianBlur(noise[i], (0, 0), side / 85).astype(np.float32)
        frames[i] = np.clip((smooth - smooth.mean()) * 4 + 128, 0, 255).astype(np.uint8)
    masks = np.zeros((n, side, side), bool)
    for i in range(n):
        dy, dx = (i * side // 32) % (side // 8), (i * side // 24) % (side // 8)
        y0, x0 = side * 5 // 16 + dy - side // 16, side // 4 + dx - side // 16
        masks[i, y0 : y0 + side * 3 // 8, x0 : x0 + side // 2] = True
    return frames, masks


def big_lama_random(seed: int = 0, calib_side: int = 256) -> nn.Module:
    """The big-lama generator with seeded random weights that keep activations in a trained-like
    range, on the CPU, in eval mode with ``requires_grad`` off (as ``load_model`` returns it).

    With PyTorch's default init the 18 residual blocks shrink the signal and the output is a flat
    grey, which no precision can get wrong. Here convolutions get He init and every BatchNorm's
    running statistics are the statistics of one training-mode forward pass over a seeded image,
    so each normalises its input like a trained network's; the fill then has real structure.
    """
    torch.manual_seed(seed)
    gen = big_lama()
    for mod in gen.modules():
        if isinstance(mod, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average: one pass sets the statistics exactly
    frames, masks = big_case(2, calib_side, seed=seed + 1000)
    img = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    hole = torch.from_numpy(masks)[:, None].float()
    gen.train()
    with torch.no_grad():
        gen(torch.cat([img * (1 - hole), hole], dim=1))
    for mod in gen.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = 0.1
    return gen.eval().requires_grad_(False)


def hole_diff(out: np.ndarray, ref: np.ndarray, masks: np.ndarray) -> tuple[float, float, int]:
    """(mean, 99th percentile, max) of ``|out - ref|`` inside the holes, in uint8 levels."""
    d = np.abs(out.astype(np.int16) - ref.astype(np.int16))[masks]
    return float(d.mean()), float(np.percentile(d, 99)), int(d.max())


def assert_within(out: np.ndarray, ref: np.ndarray, masks: np.ndarray, tol: Tol, what: str) -> None:
    mean, p99, worst = hole_diff(out, ref, masks)
    msg = (
        f"{what}: |diff| inside the holes: mean {mean:.3f} (<= {tol.mean}), "
        f"p99 {p99:.1f} (<= {tol.p99}), max {worst} (<= {tol.max}) uint8 levels"
    )
    print(msg, flush=True)  # visible with -s: the measured numbers, to re-state the tolerances
    assert mean <= tol.mean and p99 <= tol.p99 and worst <= tol.max, msg
