"""Throughput of the LaMa engine (``Inpainter``) per frame size, batch size and precision.

Cases (frames/s through ``lama_video.engines.lama.Inpainter.inpaint``, i.e. uint8 frames in and
out, with the official padding, blending and conversion included):

* ``256x256`` and ``512x512`` frames with a centred hole (whole frames go through the model);
* a 1920x1080 frame with a 10 % hole (a 480x432 box), which takes the crop strategy: the model sees
  one 736x688 crop (hole + 128 px margin), not the frame.

The model is ``big_lama()`` with random weights (same architecture and cost as the released
weights; speed does not depend on the weight values) unless ``--model tiny`` (ngf 8, 1 block: only
for checking the script). On CUDA, peak memory is ``torch.cuda.max_memory_allocated``.

Usage::

    python bench/model_bench.py --quick                 # short CPU run
    python bench/model_bench.py --device cuda           # fp32/bf16/fp16, batch 1..32
    python bench/model_bench.py --device cpu --threads 2 --sizes 256 --batch-sizes 1 4
    python bench/model_bench.py --compare-official --threads 2   # the speed issue's 2x check

``--compare-official`` times one 512x512 frame (a 256x256 hole) through ``Inpainter.inpaint``
with ``precision: auto`` (what ``remove --engine lama`` runs: the generator's inference form,
bf16 where the hardware has it) against the eager float32 generator, i.e. the official LaMa
code's computation with the official pre/post-processing (the project's eager module ran at the
official code's speed in the speed issue's measurement: 3.21-3.32 s against 3.40-3.60 s per
frame), and against the eager module under bf16 autocast (the default on bf16 CPUs before the
inference form), interleaved, ``--repeats`` rounds; it prints the medians and the ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from lama_video.engines.lama import Inpainter, resolve_device
from lama_video.model import FFCResNetGenerator, big_lama

CROP_CASE = "1080p-crop"


@dataclass
class Row:
    case: str
    model_input: str
    precision: str
    batch: int
    frames: int
    seconds: float
    peak_mib: float | None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.nan


def make_case(case: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` frames and masks of a case, and the model input size it implies."""
    rng = np.random.default_rng(seed)
    if case == CROP_CASE:
        h, w = 1080, 1920
        frames = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
        masks = np.zeros((n, h, w), bool)
        # 480 x 432 = 207,360 px = 10.0 % of the frame; crop = box + 2 x 128 margin = 736 x 688.
        masks[:, 300:732, 700:1180] = True
        return frames, masks, "crop 688x736"
    side = int(case.split("x")[0])
    frames = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    masks = np.zeros((n, side, side), bool)
    q = side // 4
    masks[:, q : 3 * q, q : 3 * q] = True
    return frames, masks, f"{side}x{side}"


def build_model(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "tiny":
        return FFCResNetGenerator(ngf=8, n_blocks=1).eval()
    return big_lama().eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    model: torch.nn.Module,
    device: torch.device,
    case: str,
    precision: str,
    batch: int,
    min_seconds: float,
    max_calls: int,
) -> Row:
    inp = Inpainter(model, device=device, precision=precision, batch_size=batch)
    frames, masks, model_input = make_case(case, batch)
    inp.inpaint(frames, masks)  # warm-up (cuDNN autotuning, allocator, lazy init)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    calls, start = 0, time.perf_counter()
    while True:
        inp.inpaint(frames, masks)
        calls += 1
        sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or calls >= max_calls:
            break
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    if inp.batch_size != batch:
        model_input += f" (OOM: batch {inp.batch_size})"
    return Row(case, model_input, precision, batch, calls * batch, elapsed, peak)


def compare_official(model: torch.nn.Module, device: torch.device, repeats: int) -> None:
    """Interleaved medians of the default path against the eager fp32 and bf16-autocast ones."""
    from lama_video.engines.lama import auto_precision

    frames, masks, _ = make_case("512x512", 1)
    runs = {
        "eager fp32 (the official computation)": Inpainter(
            model, device=device, precision="fp32", eager=True
        ),
        "eager, bf16 autocast (before)": Inpainter(
            model, device=device, precision="bf16", eager=True
        ),
        f"default (auto = {auto_precision(device)}, inference form)": Inpainter(
            model, device=device, precision="auto"
        ),
        "inference form, fp32 (CPUs without bf16)": Inpainter(
            model, device=device, precision="fp32"
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for inp in runs.values():
        inp.inpaint(frames, masks)  # warm-up
    for _ in range(repeats):
        for name, inp in runs.items():
            sync(device)
            start = time.perf_counter()
            inp.inpaint(frames, masks)
            sync(device)
            times[name].append(time.perf_counter() - start)
    base_name = next(iter(runs))
    base = float(np.median(times[base_name]))
    print(
        f"512x512 frame, 256x256 hole, {device}, torch threads {torch.get_num_threads()}, "
        f"{repeats} interleaved rounds (median s/frame; speed-up over the official computation; "
        "closeness to it is a test: tests/test_inpaint.py, tests/model/test_inference.py)"
    )
    for name in runs:
        med = float(np.median(times[name]))
        print(f"  {name:<50} {med:7.3f} s  x{base / med:5.2f}")


def print_table(rows: list[Row], header: str) -> None:
    print(header)
    cols = [
        "case",
        "model input (HxW)",
        "precision",
        "batch",
        "frames",
        "s",
        "frames/s",
        "ms/frame",
        "peak GPU MiB",
    ]
    table = [cols] + [
        [
            r.case,
            r.model_input,
            r.precision,
            str(r.batch),
            str(r.frames),
            f"{r.seconds:.2f}",
            f"{r.fps:.3f}",
            f"{1000 / r.fps:.0f}" if r.fps > 0 else "-",
            "-" if r.peak_mib is None else f"{r.peak_mib:.0f}",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for j, row in enumerate(table):
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    ap.add_argument(
        "--model",
        choices=("big", "tiny"),
        default="big",
        help="big = big_lama() with random weights; tiny = ngf 8, 1 block (smoke test)",
    )
    ap.add_argument(
        "--sizes", nargs="+", default=None, help=f"cases among 256, 512, {CROP_CASE} (default: all)"
    )
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=None)
    ap.add_argument("--precisions", nargs="+", default=None, choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--min-seconds", type=float, default=None, help="timed seconds per row")
    ap.add_argument("--max-calls", type=int, default=None, help="timed calls per row at most")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="short run: 256x256 at batch 1/2 and the 1080p crop at batch 1, one call",
    )
    ap.add_argument(
        "--compare-official",
        action="store_true",
        help="512x512: the default path against the eager fp32 (official) and autocast ones",
    )
    ap.add_argument("--repeats", type=int, default=5, help="rounds of --compare-official")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    if args.quick:
        sizes = args.sizes or ["256", CROP_CASE]
        batches = args.batch_sizes or [1, 2]
        precisions = args.precisions or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16"])
        min_s, max_calls = args.min_seconds or 0.0, args.max_calls or 1
    else:
        sizes = args.sizes or ["256", "512", CROP_CASE]
        batches = args.batch_sizes or ([1, 2, 4, 8, 16, 32] if cuda else [1, 2, 4])
        precisions = args.precisions or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16"])
        min_s, max_calls = args.min_seconds or (3.0 if cuda else 5.0), args.max_calls or 50
    if not cuda and "fp16" in precisions:
        print("note: fp16 is not run on CPU (the Inpainter falls back to fp32 there)")
        precisions = [p for p in precisions if p != "fp16"]
    cases = [s if s == CROP_CASE else f"{int(s)}x{int(s)}" for s in sizes]

    model = build_model(args.model)
    n_params = sum(p.numel() for p in model.parameters())
    dev_name = torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu"
    header = (
        f"lama-video model bench: {args.model} generator ({n_params:,} params, random weights), "
        f"device {device} ({dev_name}), torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, os.cpu_count {os.cpu_count()}"
    )
    if args.compare_official:
        print(header)
        compare_official(model, device, args.repeats)
        return 0
    rows: list[Row] = []
    for case in cases:
        for precision in precisions:
            for batch in batches:
                if case == CROP_CASE and not cuda and batch > 1 and args.quick:
                    continue  # a 736x688 big-lama crop takes seconds on CPU
                row = measure(model, device, case, precision, batch, min_s, max_calls)
                rows.append(row)
                print(
                    f"  {case} {precision} batch {batch}: {row.fps:.3f} frames/s",
                    file=sys.stderr,
                    flush=True,
                )
    print_table(rows, header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
