"""Throughput table of the big-lama generator on a GPU: frames/s and peak memory per cell.

Cells: input size (256x256, 512x512 crops and a whole 1080p frame; every size is padded up to
the multiple of 8 that the generator's 3 stride-2 stages need, which 1920x1080 already is: 1080 =
8 x 135; ``HxW`` sizes such as 100x70 run as 104x72) x precision (fp32, fp16, bf16) x batch
size (1, 2, 4, 8, 16). The model is ``big_lama()`` with random weights (the
released architecture, 51 M parameters; speed does not depend on the weight values), in eval mode
with ``requires_grad`` off, called under ``torch.inference_mode()``, in two forms (``--forms``):
``engine`` is what the ``Inpainter`` runs: the generator's inference form (BatchNorm folded; NCHW
on CUDA, channels-last on the CPU; bf16 as a whole for bf16, autocast over the fp32 form for
fp16); ``eager`` is the
generator as trained, with fp16/bf16 as ``torch.autocast`` over fp32 weights (the official
computation, and the engine before the inference form). FFTs stay fp32 in both. Only
the generator's forward pass is timed: no padding, blending or uint8 conversion (those are in
``bench/model_bench.py``, which runs the whole ``Inpainter``).

Per cell: one warm-up call (cuDNN algorithm choice, cuFFT plans, allocator growth), then up to
``--repeats`` timed calls (``torch.cuda.synchronize`` around each); frames/s = batch / median call
time. The repeats are cut so a cell takes about ``--cell-seconds`` at most, and cells that would
start after ``--budget-s`` are not run ("skip"). Peak memory is ``torch.cuda.max_memory_allocated``
(weights included), reset before each cell. A cell that runs out of memory prints "OOM", and the
larger batches of that size and precision are not tried.

Usage::

    python bench/gpu_bench.py                      # the full table on cuda (~1-3 min on an H100)
    python bench/gpu_bench.py --quick              # smoke run: 256x256, batch 1 and 2
    python bench/gpu_bench.py --device cpu --quick # the same on the CPU (peak memory n/a)
    python bench/gpu_bench.py --sizes 512 1080p --batches 1 8 --precisions fp16 bf16
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import math
import platform
import shlex
import statistics
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from lama_video import Inpainter
from lama_video.model import big_lama

PAD = 8  # the generator's input multiple (2 ** n_downsampling)
SIZES = {"256": (256, 256), "512": (512, 512), "1080p": (1080, 1920)}
PRECISIONS = ("fp32", "fp16", "bf16")
FORMS = ("engine", "eager")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def parse_size(text: str) -> tuple[str, int, int]:
    """``256`` / ``512`` / ``1080p`` / ``HxW`` -> (label, padded height, padded width)."""
    if text in SIZES:
        (h, w), label = SIZES[text], text
    elif "x" in text.lower():
        h, w = (int(v) for v in text.lower().split("x"))
        label = f"{h}x{w}"
    else:
        h = w = int(text)
        label = str(h)
    return label, -(-h // PAD) * PAD, -(-w // PAD) * PAD


@dataclass
class Cell:
    size: str
    shape: str  # model input H x W
    precision: str
    form: str  # engine or eager
    batch: int
    status: str = "ok"  # ok, OOM, skip, n/a, error
    fps: float = math.nan
    ms_per_call: float = math.nan
    calls: int = 0
    peak_mib: float | None = None
    note: str = ""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_input(batch: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """(batch, 4, h, w): masked RGB in [0, 1] and a centred rectangular hole, as the engine feeds
    the generator."""
    g = torch.Generator(device="cpu").manual_seed(0)
    img = torch.rand(batch, 3, h, w, generator=g)
    hole = torch.zeros(batch, 1, h, w)
    hole[..., h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1
    return torch.cat([img * (1 - hole), hole], dim=1).to(device)


def is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    # Some libraries report running out of memory as a plain RuntimeError.
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "CUDNN_STATUS_ALLOC_FAILED" in text or "ALLOC_FAILED" in text
    )


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class Runner:
    """A module, the dtype and layout its input takes, and the autocast it runs under."""

    module: torch.nn.Module
    dtype: torch.dtype
    memory_format: torch.memory_format
    amp: torch.dtype | None

    def autocast(self, device: torch.device) -> AbstractContextManager[Any]:
        return nullcontext() if self.amp is None else torch.autocast(device.type, dtype=self.amp)


def make_runner(model: torch.nn.Module, form: str, precision: str, device: torch.device) -> Runner:
    if form == "eager":
        return Runner(model, torch.float32, torch.contiguous_format, DTYPES.get(precision))
    # What the engine runs, taken from the Inpainter itself so the bench cannot drift from it.
    inp = Inpainter(model, device=device, precision=precision)
    in_form = inp._input_form  # private on purpose: the bench measures the engine's own choice
    if in_form is None:
        return Runner(inp.module, torch.float32, torch.contiguous_format, inp._amp_dtype)
    return Runner(inp.module, in_form.dtype, in_form.memory_format, inp._amp_dtype)


def measure(
    runner: Runner,
    device: torch.device,
    cell: Cell,
    h: int,
    w: int,
    repeats: int,
    cell_seconds: float,
) -> Cell:
    cuda = device.type == "cuda"
    x = None
    try:
        free(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        x = make_input(cell.batch, h, w, device).to(
            dtype=runner.dtype, memory_format=runner.memory_format
        )
        model = runner.module
        with torch.inference_mode(), runner.autocast(device):
            sync(device)
            t0 = time.perf_counter()
            y = model(x)
            sync(device)
            warm = time.perf_counter() - t0
            del y
            # Bound the cell: the warm-up call is slower than the timed ones, so this errs short.
            n = max(1, min(repeats, int(cell_seconds / max(warm, 1e-6))))
            times = []
            for _ in range(n):
                sync(device)
                t0 = time.perf_counter()
                y = model(x)
                sync(device)
                times.append(time.perf_counter() - t0)
                del y
        med = statistics.median(times)
        cell.ms_per_call, cell.calls = med * 1000, n
        cell.fps = cell.batch / med
        if n < repeats:
            cell.note = f"{n} timed call(s): warm-up took {warm:.1f}s"
        if cuda:
            cell.peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    except Exception as err:  # a failed cell must not end the table
        if not is_oom(err):
            first = (str(err).splitlines() or [""])[0]
            cell.status, cell.note = "error", f"{type(err).__name__}: {first}"
        else:
            cell.status = "OOM"
    finally:
        del x
        free(device)
    return cell


def fmt_table(cells: list[Cell], cuda: bool) -> str:
    cols = ["size", "model input", "precision", "form", "batch", "frames/s", "ms/call",
            "timed calls", "peak alloc MiB", "note"]  # fmt: skip
    rows = [cols]
    for c in cells:
        if c.status == "ok":
            fps, ms, calls = f"{c.fps:.2f}", f"{c.ms_per_call:.1f}", str(c.calls)
        else:
            fps, ms, calls = c.status, "-", "-"
        peak = "n/a" if not cuda else ("-" if c.peak_mib is None else f"{c.peak_mib:.0f}")
        rows.append(
            [c.size, c.shape, c.precision, c.form, str(c.batch), fps, ms, calls, peak, c.note]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(v.rjust(widths[i]) if 4 <= i <= 8 else v.ljust(widths[i])
                               for i, v in enumerate(r)).rstrip())  # fmt: skip
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_summary(cells: list[Cell], batches: list[int]) -> str:
    """frames/s as one line per size, precision and form, one column per batch size."""
    keys = list(dict.fromkeys((c.size, c.precision, c.form) for c in cells))
    head = ["size", "precision", "form", *[f"b{b}" for b in batches]]
    rows = [head]
    for size, prec, form in keys:
        by_batch = {
            c.batch: c for c in cells if (c.size, c.precision, c.form) == (size, prec, form)
        }
        row = [size, prec, form]
        for b in batches:
            c = by_batch.get(b)
            row.append(
                ""
                if c is None
                else (f"{c.fps:.{1 if c.fps >= 10 else 2}f}" if c.status == "ok" else c.status)
            )
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(v.rjust(widths[i]) if i >= 3 else v.ljust(widths[i]) for i, v in enumerate(r))
        for r in rows
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}"
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument(
        "--sizes", nargs="+", default=None, help="256, 512, 1080p or HxW (default: 256 512 1080p)"
    )
    ap.add_argument(
        "--batches", nargs="+", type=int, default=None, help="batch sizes (default: 1 2 4 8 16)"
    )
    ap.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=None,
        help="default: fp32 fp16 bf16 (fp16 is left out on the CPU)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls per cell at most (default 5; --quick 2)",
    )
    ap.add_argument(
        "--cell-seconds",
        type=float,
        default=6.0,
        help="fewer timed calls when a cell would take longer (default 6)",
    )
    ap.add_argument(
        "--budget-s",
        type=float,
        default=210.0,
        help="cells that would start later than this are skipped (default 210)",
    )
    ap.add_argument(
        "--forms",
        nargs="+",
        choices=FORMS,
        default=list(FORMS),
        help="engine (the Inpainter's inference form) and/or eager (autocast); default both",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 256x256 only, batch 1 and 2, 2 timed calls"
    )
    ap.add_argument("--seed", type=int, default=0, help="weights seed")  # fmt: skip
    args = ap.parse_args(argv)
    start = time.perf_counter()

    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        print(f"error: --device {args.device} but CUDA is not available "
              f"(torch {torch.__version__}); use --device cpu", file=sys.stderr)  # fmt: skip
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or (["256"] if args.quick else list(SIZES))
    batches = args.batches or ([1, 2] if args.quick else [1, 2, 4, 8, 16])
    precisions = list(args.precisions or PRECISIONS)
    repeats = args.repeats or (2 if args.quick else 5)
    skipped_note = []
    if not cuda and "fp16" in precisions:
        # CPU fp16 autocast is emulated (~100x slower than fp32); the engine runs fp32 there.
        precisions.remove("fp16")
        skipped_note.append("fp16 not run on the CPU (the engine falls back to fp32 there)")
    if cuda and "bf16" in precisions and not torch.cuda.is_bf16_supported():
        precisions.remove("bf16")
        skipped_note.append("bf16 not supported on this GPU")

    torch.manual_seed(args.seed)
    model = big_lama().eval().requires_grad_(False).to(device)
    n_params = sum(p.numel() for p in model.parameters())

    print("lama-video GPU bench: big-lama generator forward pass (random weights)")
    print(f"command:  {shlex.join([sys.executable, *sys.argv])}")
    print(f"date:     {dt.datetime.now().isoformat(timespec='seconds')}")
    print(
        f"torch:    {torch.__version__} (CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version() if cuda else '-'}), python {platform.python_version()}"
    )
    print(f"device:   {device} ({device_name(device)})")
    print(f"model:    big_lama(), {n_params:,} parameters; forms {args.forms} (engine = the "
          "Inpainter's inference form, eager = fp32 weights, fp16/bf16 by autocast)")  # fmt: skip
    if cuda:
        print(f"flags:    cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} (fp32 convolutions "
              f"{'use TF32' if torch.backends.cudnn.allow_tf32 else 'are IEEE fp32'}), "
              f"cudnn.benchmark={torch.backends.cudnn.benchmark}")  # fmt: skip
    print(f"cells:    sizes {sizes}, precisions {precisions}, batches {batches}, up to "
          f"{repeats} timed calls (median) after 1 warm-up, ~{args.cell_seconds:g}s per cell, "
          f"budget {args.budget_s:g}s")  # fmt: skip
    for note in skipped_note:
        print(f"note:     {note}")
    print(flush=True)

    cells: list[Cell] = []
    for size in sizes:
        label, h, w = parse_size(size)
        for precision, form in itertools.product(precisions, args.forms):
            runner = make_runner(model, form, precision, device)
            oom_at: int | None = None
            for batch in batches:
                cell = Cell(label, f"{h}x{w}", precision, form, batch)
                if oom_at is not None and batch > oom_at:
                    cell.status, cell.note = "OOM", f"not run: OOM at batch {oom_at}"
                elif time.perf_counter() - start > args.budget_s:
                    cell.status, cell.note = "skip", "time budget spent"
                else:
                    measure(runner, device, cell, h, w, repeats, args.cell_seconds)
                    if cell.status == "OOM":
                        oom_at = batch
                cells.append(cell)
                shown = f"{cell.fps:.2f} frames/s" if cell.status == "ok" else cell.status
                peak = f", peak {cell.peak_mib:.0f} MiB" if cell.peak_mib is not None else ""
                print(f"  {label} {precision} {form} batch {batch}: {shown}{peak}"
                      f"{' (' + cell.note + ')' if cell.note else ''}",
                      file=sys.stderr, flush=True)  # fmt: skip

    print(fmt_table(cells, cuda))
    print()
    print("frames/s by batch size:")
    print(fmt_summary(cells, batches))
    print(f"\ntotal {time.perf_counter() - start:.0f}s")
    return 1 if any(c.status == "error" for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())
