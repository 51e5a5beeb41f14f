"""Which form of the big-lama generator runs fastest: layout x precision x BatchNorm folding.

The evidence behind :func:`lama_video.model.inference.inference_layout` and the engine's
precision handling. Rows: the eager generator (fp32, or fp16/bf16 by ``torch.autocast``); the
folded inference form in NCHW and in channels-last, in fp32, under autocast, and as a whole in
bf16. Columns: batch x height x width. Each cell: frames/s = batch / median of ``--repeats``
timed calls after one warm-up (``torch.cuda.synchronize`` around each call); random weights
and inputs (speed does not depend on the values). The table is printed twice, with
``cudnn.benchmark`` off (the engine's setting) and on.

Usage::

    python bench/gpu_forms.py                  # cuda; about 1 minute on an H200
    python bench/gpu_forms.py --device cpu --cases 1x256x256 --repeats 1 --no-benchmark-pass
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from lama_video.model import FFCResNetGenerator, big_lama
from lama_video.model.inference import inference_form

CASES = ("1x512x512", "8x512x512", "1x480x856", "4x480x856", "1x1080x1920", "4x1080x1920")
Variant = tuple[str, nn.Module, torch.dtype, bool, torch.dtype | None]


def variants(base: FFCResNetGenerator, device: torch.device) -> Iterator[Variant]:
    """(name, module, input dtype, channels-last input, autocast dtype); folded copies are made
    one at a time, so at most two generators are on the device together."""
    eager = base.to(device)
    yield "eager fp32", eager, torch.float32, False, None
    yield "eager autocast bf16", eager, torch.float32, False, torch.bfloat16
    if device.type == "cuda":
        yield "eager autocast fp16", eager, torch.float32, False, torch.float16
    for cl, layout in ((False, "NCHW"), (True, "channels-last")):
        f32 = inference_form(base, device, torch.float32, channels_last=cl)
        yield f"folded {layout} fp32", f32, torch.float32, cl, None
        yield f"folded {layout} autocast bf16", f32, torch.float32, cl, torch.bfloat16
        if device.type == "cuda":
            yield f"folded {layout} autocast fp16", f32, torch.float32, cl, torch.float16
        del f32
        b16 = inference_form(base, device, torch.bfloat16, channels_last=cl)
        yield f"folded {layout} whole bf16", b16, torch.bfloat16, cl, None
        del b16


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def frames_per_s(variant: Variant, case: str, device: torch.device, repeats: int) -> float:
    _, module, dtype, cl, amp = variant
    b, h, w = (int(v) for v in case.split("x"))
    x = torch.rand(b, 4, h, w, device=device).to(dtype)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    ctx: AbstractContextManager[Any] = (
        torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext()
    )
    times = []
    with torch.inference_mode(), ctx:
        module(x)
        sync(device)
        for _ in range(repeats):
            t0 = time.perf_counter()
            module(x)
            sync(device)
            times.append(time.perf_counter() - t0)
    return b / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--cases", nargs="+", default=list(CASES), help="BxHxW (multiples of 8)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-benchmark-pass", action="store_true", help="skip cudnn.benchmark=True")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"error: --device {args.device} but CUDA is not available", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    base = big_lama().eval().requires_grad_(False)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"big-lama forms on {device} ({name}), torch {torch.__version__}, frames/s")
    for benchmark in (False,) if args.no_benchmark_pass else (False, True):
        torch.backends.cudnn.benchmark = benchmark
        print(f"\ncudnn.benchmark={benchmark}")
        print("variant".ljust(38) + "".join(c.rjust(13) for c in args.cases), flush=True)
        for variant in variants(base, device):
            row = [frames_per_s(variant, c, device, args.repeats) for c in args.cases]
            print(variant[0].ljust(38) + "".join(f"{v:13.1f}" for v in row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
