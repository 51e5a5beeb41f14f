"""Training speed of ``lama-video finetune``, and a short internal-learning run on real footage.

Parts (each can be skipped):

* ``speed``: training steps/s (generator step + discriminator step, LaMa's losses, Adam) on
  random 256x256 crops, for the tiny generator (ngf 8, 1 block) and the big-lama generator (51M).
  On CPU in fp32 with a few steps. On CUDA also bf16 autocast vs fp32, a batch sweep and the peak
  memory (``torch.cuda.max_memory_allocated``). The HRF perceptual loss is timed with a
  random-weight encoder (``--hrf``), since its cost does not depend on the weight values.
* ``internal``: a short fine-tune of a new tiny generator on one shared DAVIS sequence's visible
  background (``../shared/data/sequences/<name>/{frames,masks}``, the object never a target),
  with hole PSNR / SSIM on held-back frames before and after. Without LaMa's weights this starts
  from random weights, so it shows that the recipe learns a clip's background, not how much it
  improves big-lama.

Usage::

    python bench/train_bench.py                         # CPU, a couple of minutes
    python bench/train_bench.py --parts speed --device cuda --batch-sizes 1 4 8 16
    python bench/train_bench.py --parts internal --sequence tennis --steps 300
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lama_video.model.generator import FFCResNetGenerator
from lama_video.train.config import LossWeights
from lama_video.train.data import FrameSet
from lama_video.train.losses import ResNet50Dilated
from lama_video.train.trainer import ARCHS, FinetuneConfig, Finetuner, finetune, resolve_device

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def time_steps(
    arch: str, *, device: torch.device, batch: int, crop: int, steps: int, precision: str, hrf: bool
) -> tuple[float, float | None]:
    """(steps/s, peak MiB on CUDA or None) of ``steps`` timed training steps after one warm-up."""
    rng = np.random.default_rng(0)
    frames = FrameSet(
        [rng.integers(0, 256, (crop + 32, crop + 32, 3), dtype=np.uint8) for _ in range(4)],
        None,
        ["noise"] * 4,
    )
    torch.manual_seed(0)
    gen = FFCResNetGenerator.from_arch(ARCHS[arch])
    losses = LossWeights(hrf_perceptual=30.0 if hrf else 0.0)
    cfg = FinetuneConfig(
        steps=steps + 1,
        batch_size=batch,
        crop_px=crop,
        val_frames=0,
        precision=precision,
        losses=losses,
    )
    encoder = ResNet50Dilated() if hrf else None  # random weights: timing only
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Finetuner(
            gen,
            ARCHS[arch],
            frames,
            frames.subset([]),
            tmp,
            cfg,
            device=device,
            hrf_encoder=encoder,
        )
        batches = [trainer.sampler.batch(batch) for _ in range(steps + 1)]
        trainer.train_step(batches[0])  # warm-up (allocator, cuDNN autotune)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for b in batches[1:]:
            trainer.train_step(b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return steps / seconds, peak


def run_speed(args: argparse.Namespace, device: torch.device) -> None:
    where = (
        f"{device} ({torch.get_num_threads()} threads)"
        if device.type == "cpu"
        else torch.cuda.get_device_name(device)
    )
    print(f"\n## Training speed, {args.crop}x{args.crop} crops, {where}")
    print("| generator | HRF loss | precision | batch | steps/s | crops/s | peak MiB |")
    print("|---|---|---|---|---|---|---|")
    precisions = ["fp32"] if device.type == "cpu" else ["fp32", "bf16"]
    cases: list[tuple[str, bool, int]] = []
    for arch in args.archs:
        for b in args.batch_sizes if device.type == "cuda" else args.batch_sizes[:1]:
            cases.append((arch, False, b))
        if args.hrf:
            cases.append((arch, True, args.batch_sizes[0]))
    for arch, hrf, batch in cases:
        for precision in precisions:
            steps = args.cpu_steps.get(arch, 2) if device.type == "cpu" else args.gpu_steps
            try:
                sps, peak = time_steps(
                    arch,
                    device=device,
                    batch=batch,
                    crop=args.crop,
                    steps=steps,
                    precision=precision,
                    hrf=hrf,
                )
            except torch.cuda.OutOfMemoryError:
                print(f"| {arch} | {'yes' if hrf else 'no'} | {precision} | {batch} | OOM | | |")
                torch.cuda.empty_cache()
                continue
            peak_s = f"{peak:.0f}" if peak is not None else "n/a (CPU)"
            print(
                f"| {arch} | {'yes (random encoder)' if hrf else 'no'} | {precision} | {batch} "
                f"| {sps:.3f} | {sps * batch:.2f} | {peak_s} |",
                flush=True,
            )


def run_internal(args: argparse.Namespace, device: torch.device) -> None:
    seq = SHARED / "data" / "sequences" / args.sequence
    if not (seq / "frames").is_dir():
        print(f"\n## Internal learning: skipped, {seq} is missing (../shared/data not present)")
        return
    cfg = FinetuneConfig(
        steps=args.steps,
        batch_size=args.batch,
        crop_px=args.internal_crop,
        val_frames=args.val_frames,
        val_every=max(1, args.steps // 4),
        save_every=args.steps,
        seed=0,
        losses=LossWeights(hrf_perceptual=0.0),
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = finetune(
            data=[seq / "frames"],
            mask=seq / "masks",
            out_dir=Path(tmp) / "run",
            cfg=cfg,
            arch="tiny",
            device=str(device),
        )
        wall = time.perf_counter() - t0
    start = result.start_metrics or {"psnr": math.nan, "ssim": math.nan}
    print(
        f"\n## Internal learning on {args.sequence} (background only, object masks dilated 4 px;"
        f" tiny generator from scratch, {args.internal_crop}px crops, batch {args.batch}, "
        f"HRF off, {args.val_frames} held-back frames)"
    )
    print("| step | hole PSNR dB | hole SSIM |")
    print("|---|---|---|")
    print(f"| 0 (start) | {start['psnr']:.2f} | {start['ssim']:.4f} |")
    for row in result.history:
        print(f"| {row['step']} | {row['psnr']:.2f} | {row['ssim']:.4f} |")
    print(
        f"\n{result.step} steps in {result.seconds:.1f} s ({result.steps_per_s:.2f} steps/s; "
        f"{wall:.1f} s with decoding); best step {result.best_step}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--parts", nargs="+", default=["speed", "internal"], choices=["speed", "internal"]
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--archs", nargs="+", default=["tiny", "big-lama"], choices=list(ARCHS))
    p.add_argument("--crop", type=int, default=256)
    p.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=None,
        help="default: 1 on CPU, 1 4 8 16 on CUDA",
    )
    p.add_argument("--hrf", action="store_true", help="also time the HRF perceptual loss")
    p.add_argument("--gpu-steps", type=int, default=10)
    p.add_argument("--sequence", default="bmx-trees")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--internal-crop", type=int, default=128)
    p.add_argument("--val-frames", type=int, default=6)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.batch_sizes is None:
        args.batch_sizes = [1, 4, 8, 16] if device.type == "cuda" else [1]
    args.cpu_steps = {"tiny": 5, "lama-fourier": 2, "big-lama": 2}
    print(
        f"# train_bench: torch {torch.__version__}, python {platform.python_version()}, "
        f"{platform.processor() or platform.machine()}, device {device}"
    )
    if device.type != "cuda":
        print("GPU: none in this run; bf16 autocast, batch sweep and peak memory are unmeasured.")
    if "speed" in args.parts:
        run_speed(args, device)
    if "internal" in args.parts:
        run_internal(args, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
