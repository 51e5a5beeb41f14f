"""GPU checks (opt-in: ``pytest -m gpu``; every test is skipped where CUDA is not available).

* fp16 / bf16 output against fp32, and CUDA fp32 against CPU fp32, within the tolerances stated
  below, on the parity generator (``tests/fixtures/lama-parity``) and on big-lama-sized random
  weights;
* the out-of-memory back-off of the ``Inpainter`` (batch halved on ``torch.cuda.OutOfMemoryError``)
  under a real memory cap (``torch.cuda.set_per_process_memory_fraction``);
* ``lama-video remove --device cuda --engine lama`` end to end.

Run them with ``python -m pytest -q -m gpu tests/test_gpu.py -rs`` (add ``-s`` to see the measured
differences, which every comparison prints), or all at once with ``bash bench/gpu_check.sh``.

Only public names are used (``lama_video.Inpainter``, ``lama_video.model``, the CLI), so the tests
do not depend on where the engine lives inside the package.

Every comparison is done on uint8 output, inside the holes (outside them the ``Inpainter`` copies
the input bit for bit, which is asserted too), in uint8 levels (0..255). Official post-processing
truncates (``clip(x * 255).astype(uint8)``), so a value that lies next to a level boundary can flip
by one level under any change of summation order: "max 1" is the tightest meaningful bound.
"""

from __future__ import annotations

import copy
import gc
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from lama_helpers import BIG_TOL, Tol, assert_within, big_case, big_lama_random
from torch import nn

from lama_video import Inpainter
from lama_video.model.weights import load_model

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PARITY = FIXTURES / "lama-parity"
MEDIA = FIXTURES / "media"

CUDA = torch.cuda.is_available()

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not CUDA,
        reason=f"needs a CUDA GPU: torch.cuda.is_available() is False (torch {torch.__version__})",
    ),
]


# ------------------------------------------------------------------------------- tolerances


# Parity generator (big-lama settings shrunk to ngf 16, 3 downsamplings, 2 residual blocks; the
# 61x83 fixture image, a 26 % hole: ~4,000 compared values).
# Measured on CPU with torch 2.13 autocast, against CPU fp32: bf16 mean 0.71 / max 4; fp16
# mean 0.09 / max 1. The bounds leave 3x (mean) to 4x (max) room for other kernels (cuDNN picks
# other algorithms than oneDNN, cuFFT other plans than pocketfft).
PARITY_TOL = {
    # CUDA fp32 with TF32 off vs CPU fp32: IEEE fp32 on both, only the summation order differs
    # (relative differences ~1e-6), so only values at a level boundary may flip, by one.
    "fp32": Tol(mean=0.02, p99=0, max=1),
    # CUDA fp32 with PyTorch's default cuDNN flags (TF32 convolutions on Ampere and newer: a
    # 10-bit mantissa like fp16) vs CPU fp32: what `--precision fp32` really runs on a GPU.
    "tf32": Tol(mean=0.5, p99=2, max=4),
    # fp16 autocast (FFTs stay fp32) vs CUDA fp32 (TF32 off): 11-bit significand.
    "fp16": Tol(mean=0.5, p99=2, max=4),
    # bf16 autocast vs CUDA fp32 (TF32 off): 8-bit significand, 8x coarser than fp16.
    "bf16": Tol(mean=2.0, p99=6, max=12),
}

# Raw generator output (sigmoid, float) on CUDA fp32 with TF32 off vs the official LaMa code's
# output stored in the fixture (the CPU test holds 1e-5; cuFFT and cuDNN sum in another order).
RAW_ATOL_CUDA = 1e-4

# Input pixels of the end-to-end test that lie far (> 32 px) from the removed box: decoded output
# vs decoded input. Both are H.264 (the output re-encoded at the default CRF 18), so they differ
# by codec noise only; a filled or shifted region would exceed these by far.
CODEC_NOISE_MEAN = 2.5
CODEC_NOISE_P99 = 16


# ---------------------------------------------------------------------------------- helpers


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """cuDNN and matmul TF32 switched on or off for the block (restored after).

    PyTorch's default is TF32 on for cuDNN convolutions (off for matmuls), so plain fp32 on an
    Ampere-or-newer GPU is not IEEE fp32. The legacy flags work on every torch this package
    supports (>= 2.1).
    """
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def parity_case() -> tuple[np.ndarray, np.ndarray]:
    """The parity fixture's image (1, 61, 83, 3) uint8 RGB and hole mask (1, 61, 83) bool."""
    bgr = cv2.imread(str(PARITY / "input.png"), cv2.IMREAD_COLOR)
    grey = cv2.imread(str(PARITY / "input_mask.png"), cv2.IMREAD_GRAYSCALE)
    assert bgr is not None and grey is not None, PARITY
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None], (grey > 0)[None]


def run(
    model: object,
    device: str,
    precision: str,
    frames: np.ndarray,
    masks: np.ndarray,
    *,
    batch_size: int = 8,
) -> np.ndarray:
    """``Inpainter(model, ...)(frames, masks)``; checks that pixels outside the holes are kept.

    ``Inpainter`` runs a folded copy of a generator (other modules it moves to ``device`` in
    place): build it right before use.
    """
    out = Inpainter(model, device=device, precision=precision, batch_size=batch_size)(frames, masks)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[~masks], frames[~masks]), "pixels outside the holes changed"
    return out


def precision_supported(precision: str) -> bool:
    return precision != "bf16" or torch.cuda.is_bf16_supported()


def decode_rgb(path: Path) -> list[np.ndarray]:
    """Every picture of ``path``'s first video stream as (H, W, 3) uint8 RGB (PyAV)."""
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


BOX = (100, 80, 60, 50)  # x, y, w, h: the box removed in the end-to-end test


def far_from_box(shape: tuple[int, int], box: tuple[int, int, int, int], margin: int) -> np.ndarray:
    """(H, W) bool: pixels more than ``margin`` px away from ``box`` (x, y, w, h)."""
    h, w = shape
    x, y, bw, bh = box
    far = np.ones((h, w), bool)
    far[max(0, y - margin) : y + bh + margin, max(0, x - margin) : x + bw + margin] = False
    return far


def remove_cli(tmp_path: Path, device: str, temporal: str) -> tuple[Path, str]:
    """``python -m lama_video remove aac.mp4 --box ... --engine lama --device DEVICE`` in a fresh
    interpreter; returns the output path and the last line of its stderr."""
    out = tmp_path / f"out_{device}{temporal.replace('-', '_')}.mp4"
    cmd = [
        sys.executable, "-m", "lama_video", "remove", str(MEDIA / "aac.mp4"),
        "--box", ",".join(map(str, BOX)),
        "--engine", "lama",
        "--model", str(PARITY / "tiny_generator.pt"),
        "--device", device,
        temporal,
        "-o", str(out),
    ]  # fmt: skip
    # `python -m` puts the working directory first on sys.path: the checkout's lama_video runs.
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    return out, lines[-1] if lines else ""


def check_remove_output(src: Path, out: Path, last_line: str) -> None:
    """Same frame count and size as ``src``; far from the box only codec noise; the box changed."""
    assert out.is_file() and out.stat().st_size > 1000, out
    assert "lama" in last_line and "45 frames" in last_line, last_line
    before, after = decode_rgb(src), decode_rgb(out)
    assert len(after) == len(before) == 45, (len(before), len(after))
    assert after[0].shape == before[0].shape
    far = far_from_box(before[0].shape[:2], BOX, margin=32)
    a = np.stack(after).astype(np.int16)
    b = np.stack(before).astype(np.int16)
    d_far = np.abs(a - b)[:, far]
    mean, p99 = float(d_far.mean()), float(np.percentile(d_far, 99))
    x, y, w, h = BOX
    d_box = float(np.abs(a - b)[:, y + 8 : y + h - 8, x + 8 : x + w - 8].mean())
    msg = (
        f"far from the box |out - in|: mean {mean:.2f} (<= {CODEC_NOISE_MEAN}), "
        f"p99 {p99:.1f} (<= {CODEC_NOISE_P99}); inside the box mean {d_box:.1f} (> 1)"
    )
    print(msg, flush=True)
    assert mean <= CODEC_NOISE_MEAN and p99 <= CODEC_NOISE_P99, msg
    assert d_box > 1, msg  # the object was really replaced


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def parity_model():
    """The parity fixture's generator (``LoadedModel``) on the CPU."""
    return load_model(PARITY / "tiny_generator.pt", map_location="cpu")


@pytest.fixture(scope="module")
def parity_refs(parity_model) -> dict[str, np.ndarray]:
    """fp32 references of the parity case: on the CPU and on CUDA with TF32 off."""
    frames, masks = parity_case()
    cpu = run(copy.deepcopy(parity_model), "cpu", "fp32", frames, masks)
    with tf32(False):
        cuda = run(copy.deepcopy(parity_model), "cuda", "fp32", frames, masks)
    return {"cpu": cpu, "cuda": cuda}


@pytest.fixture(scope="module")
def big_model() -> nn.Module:
    """big_lama_random(0) on the CPU (copy it before handing it to an Inpainter)."""
    return big_lama_random(0)


@pytest.fixture(scope="module")
def big_refs(big_model) -> dict[str, np.ndarray]:
    """fp32 references of the 2 x 512x512 case: on the CPU and on CUDA with TF32 off."""
    frames, masks = big_case(2, 512)
    cpu = run(copy.deepcopy(big_model), "cpu", "fp32", frames, masks)
    with tf32(False):
        cuda = run(copy.deepcopy(big_model), "cuda", "fp32", frames, masks)
    return {"cpu": cpu, "cuda": cuda}


@pytest.fixture(autouse=True)
def _free_cuda_memory() -> Iterator[None]:
    yield
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()


# --------------------------------------------------------------------- parity generator (a)


def test_parity_raw_output_on_cuda_matches_the_official_code(parity_model) -> None:
    x = torch.from_numpy(np.load(PARITY / "expected_model_input.npy"))
    expected = np.load(PARITY / "expected_raw.npy")
    module = copy.deepcopy(parity_model.module).cuda()
    with tf32(False), torch.inference_mode():
        y = module(x.cuda()).float().cpu().numpy()
    np.testing.assert_allclose(y, expected, rtol=0, atol=RAW_ATOL_CUDA)


@pytest.mark.parametrize("mode", ["fp32", "tf32"])
def test_parity_cuda_fp32_matches_cpu_fp32(parity_model, parity_refs, mode: str) -> None:
    frames, masks = parity_case()
    with tf32(mode == "tf32"):
        out = run(copy.deepcopy(parity_model), "cuda", "fp32", frames, masks)
    assert_within(out, parity_refs["cpu"], masks, PARITY_TOL[mode], f"parity cuda {mode} vs cpu")


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_parity_reduced_precision_close_to_fp32(parity_model, parity_refs, precision: str) -> None:
    frames, masks = parity_case()
    out = run(copy.deepcopy(parity_model), "cuda", precision, frames, masks)
    # Without bf16 support the Inpainter falls back to fp32: then the output is the fp32 one.
    tol = PARITY_TOL[precision] if precision_supported(precision) else PARITY_TOL["fp32"]
    assert_within(out, parity_refs["cuda"], masks, tol, f"parity {precision} vs fp32")


# ----------------------------------------------------------- big-lama-sized random weights (b)


def test_big_random_weights_fill_has_structure(big_refs) -> None:
    """Guards the tolerances below: a flat fill (std ~0) would pass any of them."""
    _, masks = big_case(2, 512)
    assert big_refs["cpu"][masks].std() > 10, big_refs["cpu"][masks].std()


@pytest.mark.parametrize("mode", ["fp32", "tf32"])
def test_big_cuda_fp32_matches_cpu_fp32(big_model, big_refs, mode: str) -> None:
    frames, masks = big_case(2, 512)
    if mode == "fp32":
        out = big_refs["cuda"]
    else:
        with tf32(True):
            out = run(copy.deepcopy(big_model), "cuda", "fp32", frames, masks)
    assert_within(out, big_refs["cpu"], masks, BIG_TOL[mode], f"big-lama cuda {mode} vs cpu")


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_big_reduced_precision_close_to_fp32(big_model, big_refs, precision: str) -> None:
    frames, masks = big_case(2, 512)
    out = run(copy.deepcopy(big_model), "cuda", precision, frames, masks)
    # Without bf16 support the Inpainter falls back to fp32: then the output is the fp32 one.
    tol = BIG_TOL[precision] if precision_supported(precision) else BIG_TOL["fp32"]
    assert_within(out, big_refs["cuda"], masks, tol, f"big-lama {precision} vs fp32")


# ------------------------------------------------------------------- out-of-memory back-off (c)


def test_oom_backoff_under_a_real_memory_cap(big_model, caplog: pytest.LogCaptureFixture) -> None:
    """With the process capped to what batch 1 needs plus half an item, a batch of 8 runs out of
    memory for real; the Inpainter halves its batch until it fits and the output matches the
    batch-1 run."""
    dev = torch.device("cuda", torch.cuda.current_device())
    frames, masks = big_case(8, 512, seed=3)
    model = copy.deepcopy(big_model)
    with tf32(False):
        # One Inpainter for both runs: each holds its own copy of the weights on the device (its
        # inference form), which ``base`` must include.
        inp = Inpainter(model, device=dev, precision="fp32", batch_size=1)
        torch.cuda.synchronize(dev)
        gc.collect()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_reserved(dev)  # weights, and whatever else this process holds
        torch.cuda.reset_peak_memory_stats(dev)
        ref = inp(frames, masks)
        torch.cuda.synchronize(dev)
        peak1 = torch.cuda.max_memory_reserved(dev)
        per_item = peak1 - base
        total = torch.cuda.get_device_properties(dev).total_memory
        cap = peak1 + per_item // 2  # batch 1 fits with room; batch 2 needs ~2 items: does not
        numbers = (
            f"reserved before {base / 2**20:.0f} MiB, batch-1 peak {peak1 / 2**20:.0f} MiB, "
            f"cap {cap / 2**20:.0f} MiB of {total / 2**20:.0f} MiB"
        )
        print(numbers, flush=True)
        assert per_item > 64 * 2**20, numbers  # a 512x512 big-lama item needs far more
        assert cap < total, numbers
        gc.collect()
        torch.cuda.empty_cache()
        inp.batch_size = 8
        torch.cuda.set_per_process_memory_fraction(cap / total, dev)
        try:
            with caplog.at_level(logging.WARNING, logger="lama_video"):
                out = inp(frames, masks)
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, dev)
            torch.cuda.empty_cache()
    print(f"batch size after the run: {inp.batch_size}", flush=True)
    assert inp.batch_size < 8, f"the batch was not reduced ({numbers})"
    assert "memory" in caplog.text and f"batch size {inp.batch_size}" in caplog.text, caplog.text
    assert np.array_equal(out[~masks], frames[~masks])
    assert_within(out, ref, masks, BIG_TOL["fp32"], "OOM back-off vs batch 1")


# ------------------------------------------------------------------------ end to end on CUDA (d)


@pytest.mark.parametrize("temporal", ["--temporal", "--no-temporal"])
def test_remove_on_cuda_end_to_end(tmp_path: Path, temporal: str) -> None:
    out, last = remove_cli(tmp_path, "cuda", temporal)
    check_remove_output(MEDIA / "aac.mp4", out, last)
