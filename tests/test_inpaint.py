"""Tests of lama_video.engines.lama: official pre/post-processing, crops, batching, precision."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lama_helpers import BIG_TOL, assert_within, big_case, big_lama_random, hole_diff
from torch import nn

from lama_video.config import InpaintConfig
from lama_video.engines import ImageEngine, make_image_engine
from lama_video.engines.classical import ClassicalEngine
from lama_video.engines.exemplar import ExemplarEngine
from lama_video.engines.lama import (
    CropBox,
    Inpainter,
    hole_boxes,
    pad_to_multiple,
    resolve_device,
    symmetric_pad_index,
)
from lama_video.errors import ConfigError, LamaVideoError, WeightsError
from lama_video.model import FFCResNetGenerator


def tiny_generator(seed: int = 0) -> FFCResNetGenerator:
    """The real architecture, shrunk, seeded; BatchNorm statistics far from identity."""
    torch.manual_seed(seed)
    gen = FFCResNetGenerator(ngf=8, n_blocks=1)
    g = torch.Generator().manual_seed(seed)
    for mod in gen.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.3)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) * 2 + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return gen.eval()


class Recorder(nn.Module):
    """Wraps a module and records the shape of every input it sees."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return self.inner(x)


class Constant(nn.Module):
    """A 'generator' predicting one grey level everywhere."""

    def __init__(self, value: float = 0.5) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x[:, :3], self.value)


class OomAboveTwo(nn.Module):
    """Raises CUDA out-of-memory for batches larger than 2, else behaves like ``inner``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        if x.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return self.inner(x)


def _frames(n: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        masks[i, y : y + max(3, h // 4), x : x + max(3, w // 5)] = True
    masks[:, -2:, -3:] = True  # holes on the bottom-right border: the padding matters
    return frames, masks


def _official(gen: nn.Module, img_u8: np.ndarray, mask_u8: np.ndarray) -> np.ndarray:
    """LaMa's predict.py math written out with numpy (LAMA_REFERENCE.md (c)): (H, W, 3) float."""
    h, w = mask_u8.shape
    img = np.transpose(img_u8, (2, 0, 1)).astype("float32") / 255
    mask = mask_u8[None].astype("float32") / 255
    hp, wp = -(-h // 8) * 8, -(-w // 8) * 8
    img = np.pad(img, ((0, 0), (0, hp - h), (0, wp - w)), mode="symmetric")
    mask = np.pad(mask, ((0, 0), (0, hp - h), (0, wp - w)), mode="symmetric")
    image_t = torch.from_numpy(img)[None]
    mask_t = (torch.from_numpy(mask)[None] > 0) * 1
    with torch.no_grad():
        pred = gen(torch.cat([image_t * (1 - mask_t), mask_t], dim=1))
    res = mask_t * pred + (1 - mask_t) * image_t
    return res[0].permute(1, 2, 0).numpy()[:h, :w]


# ----------------------------------------------------------------------------------- padding


@pytest.mark.parametrize(("size", "padded"), [(3, 8), (5, 8), (1, 8), (13, 16), (16, 16), (2, 15)])
def test_symmetric_pad_index_matches_numpy(size: int, padded: int) -> None:
    a = np.arange(size)
    assert np.array_equal(
        symmetric_pad_index(size, padded), np.pad(a, (0, padded - size), mode="symmetric")
    )


def test_pad_to_multiple_matches_numpy() -> None:
    x = torch.rand(2, 3, 13, 5)  # padded to 16 x 16 (at least two multiples)
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 3), (0, 11)), mode="symmetric")
    assert np.array_equal(pad_to_multiple(x).numpy(), expected)
    assert pad_to_multiple(torch.rand(1, 1, 24, 16)).shape == (1, 1, 24, 16)
    assert pad_to_multiple(torch.rand(1, 1, 17, 31)).shape == (1, 1, 24, 32)


# ---------------------------------------------------------------------- official equivalence


@pytest.mark.parametrize(("h", "w"), [(61, 83), (37, 53), (40, 48), (9, 11)])
def test_matches_official_processing(h: int, w: int) -> None:
    gen = tiny_generator()
    frames, masks = _frames(1, h, w, seed=h)
    # A non-binary mask: grey edges and a lone 1, as anti-aliased PNG masks have.
    mask_u8 = masks[0].astype(np.uint8) * 255
    mask_u8[0, 0] = 1
    mask_u8[h // 2, :2] = 37
    expected = _official(gen, frames[0], mask_u8)
    inp = Inpainter(gen, device="cpu")
    got = inp.inpaint_tensor(
        torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255,
        torch.from_numpy(mask_u8)[None, None].float() / 255,
    )
    assert got.shape == (1, 3, h, w) and got.dtype == torch.float32
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, atol=1e-5, rtol=0)
    out = inp.inpaint(frames, mask_u8[None] > 0)
    official_u8 = np.clip(expected * 255, 0, 255).astype("uint8")
    hole = mask_u8 > 0
    assert np.abs(out[0][hole].astype(int) - official_u8[hole]).max() <= 1
    assert np.array_equal(out[0][~hole], frames[0][~hole])


def test_tiny_frames_are_padded_to_two_multiples() -> None:
    rec = Recorder(tiny_generator())
    frames, masks = _frames(2, 5, 7, seed=1)
    out = Inpainter(rec, device="cpu")(frames, masks)
    assert rec.shapes == [(2, 4, 16, 16)]
    assert np.array_equal(out[~masks], frames[~masks])


def test_outside_pixels_bit_exact_and_shapes() -> None:
    frames, masks = _frames(5, 29, 47, seed=3)
    masks[2] = False  # a frame without holes goes nowhere near the model
    rec = Recorder(tiny_generator())
    inp = Inpainter(rec, device="cpu", batch_size=8)
    assert isinstance(inp, ImageEngine) and inp.name == "lama"
    before = frames.copy()
    out = inp(frames, masks)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(frames, before)  # input untouched
    assert np.array_equal(out[~masks], frames[~masks])
    assert np.array_equal(out[2], frames[2])
    assert rec.shapes == [(4, 4, 32, 48)]  # four frames with holes, one batch, padded to x8
    assert (out[masks] != frames[masks]).mean() > 0.9  # the holes were really filled


def test_batch_size_does_not_change_the_result() -> None:
    gen = tiny_generator(1)
    frames, masks = _frames(6, 33, 41, seed=5)
    out1 = Inpainter(gen, device="cpu", batch_size=1).inpaint(frames, masks)
    out4 = Inpainter(gen, device="cpu", batch_size=4).inpaint(frames, masks)
    assert np.abs(out1.astype(int) - out4.astype(int)).max() <= 1
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    m = torch.from_numpy(masks)[:, None].float()
    f1 = Inpainter(gen, device="cpu", batch_size=1).inpaint_tensor(x, m)
    f4 = Inpainter(gen, device="cpu", batch_size=4).inpaint_tensor(x, m)
    torch.testing.assert_close(f1, f4, atol=1e-5, rtol=0)
    # Outside the holes the float path returns the input values exactly.
    assert torch.equal(f4[m.expand_as(x) == 0], x[m.expand_as(x) == 0])


def test_mixed_sizes_are_grouped_by_padded_shape() -> None:
    rec = Recorder(Constant(0.25))
    inp = Inpainter(rec, device="cpu", batch_size=8, crop_trigger_px=100, crop_margin_px=4)
    frame = np.full((1, 90, 120, 3), 200, np.uint8)
    mask = np.zeros((1, 90, 120), bool)
    mask[0, 10:14, 10:14] = True  # box 12x12 -> 16x16
    mask[0, 50:54, 60:64] = True  # box 12x12 -> 16x16 (same group)
    mask[0, 80:90, 100:120] = True  # box 14x24 -> 16x24
    out = inp(frame, mask)
    assert sorted(rec.shapes) == [(1, 4, 16, 24), (2, 4, 16, 16)]
    assert np.all(out[0][mask[0]] == 63)  # 0.25 * 255 = 63.75, truncated like LaMa
    assert np.array_equal(out[0][~mask[0]], frame[0][~mask[0]])


# ------------------------------------------------------------------------------------ crops


def test_hole_boxes_margin_clip_and_merge() -> None:
    mask = np.zeros((100, 200), bool)
    mask[10:20, 10:20] = True
    mask[10:20, 35:40] = True  # grown boxes overlap the first -> merged
    mask[80:90, 150:160] = True
    boxes = hole_boxes(mask, margin_px=10)
    assert boxes == [CropBox(0, 30, 0, 50), CropBox(70, 100, 140, 170)]
    assert hole_boxes(mask, margin_px=0) == [
        CropBox(10, 20, 10, 20),
        CropBox(10, 20, 35, 40),
        CropBox(80, 90, 150, 160),
    ]
    assert hole_boxes(np.zeros((5, 5), bool), 3) == []


def test_large_frame_takes_the_crop_path() -> None:
    gen = tiny_generator(2)
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (1, 1000, 900, 3), dtype=np.uint8)
    mask = np.zeros((1, 1000, 900), bool)
    mask[0, 100:120, 200:230] = True
    mask[0, 700:710, 50:60] = True
    rec = Recorder(gen)
    inp = Inpainter(rec, device="cpu")  # defaults: trigger 800, margin 128
    out = inp(frame, mask)
    # Box 1: y 0..248, x 72..358 -> padded 248x288; box 2: y 572..838, x 0..188 -> 272x192.
    assert sorted(s[2:] for s in rec.shapes) == [(248, 288), (272, 192)]
    assert all(s[0] == 1 for s in rec.shapes)
    assert np.array_equal(out[0][~mask[0]], frame[0][~mask[0]])
    assert (out[0][mask[0]] != frame[0][mask[0]]).mean() > 0.9
    # Each crop is processed exactly like a small frame holding only that crop.
    whole = Inpainter(gen, device="cpu", crop_trigger_px=2000)
    for y0, y1, x0, x1 in [(0, 248, 72, 358), (572, 838, 0, 188)]:
        ref = whole(frame[:, y0:y1, x0:x1].copy(), mask[:, y0:y1, x0:x1].copy())
        assert np.array_equal(out[:, y0:y1, x0:x1], ref)


def test_frame_at_trigger_goes_whole() -> None:
    rec = Recorder(Constant())
    inp = Inpainter(rec, device="cpu", crop_trigger_px=100)
    frame = np.zeros((1, 100, 60, 3), np.uint8)
    mask = np.zeros((1, 100, 60), bool)
    mask[0, 5:8, 5:8] = True
    inp(frame, mask)
    assert rec.shapes == [(1, 4, 104, 64)]


def test_huge_hole_takes_the_resize_path() -> None:
    rec = Recorder(Constant(0.5))
    inp = Inpainter(rec, device="cpu", crop_trigger_px=300, crop_margin_px=16, resize_limit_px=128)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1, 500, 700, 3), dtype=np.uint8)
    mask = np.zeros((1, 500, 700), bool)
    mask[0, 50:450, 100:600] = True
    out = inp(frame, mask)
    # crop 432x532 (margin 16) -> longest side 532 downscaled to 128: 104x128, already x8.
    assert rec.shapes == [(1, 4, 104, 128)]
    assert np.array_equal(out[0][~mask[0]], frame[0][~mask[0]])
    # The upscaled constant fill lands on every hole pixel (0.5 * 255 truncated = 127).
    assert np.all(out[0][mask[0]] == 127)


def test_resize_path_with_real_generator_fills_smoothly() -> None:
    gen = tiny_generator(3)
    inp = Inpainter(gen, device="cpu", crop_trigger_px=64, crop_margin_px=8, resize_limit_px=64)
    yy, xx = np.mgrid[0:150, 0:200]
    frame = np.stack([xx, yy, xx + yy], -1).astype(np.uint8)[None]
    mask = np.zeros((1, 150, 200), bool)
    mask[0, 30:120, 40:160] = True
    out = inp(frame, mask)
    assert np.array_equal(out[0][~mask[0]], frame[0][~mask[0]])
    assert not np.array_equal(out[0][mask[0]], frame[0][mask[0]])


# ----------------------------------------------------------------------- OOM, precision, kinds


def test_cuda_oom_halves_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    gen = tiny_generator(4)
    frames, masks = _frames(7, 24, 32, seed=9)
    fake = OomAboveTwo(gen)
    inp = Inpainter(fake, device="cpu", batch_size=8)
    with caplog.at_level(logging.WARNING, logger="lama_video.engines.lama"):
        out = inp(frames, masks)
    assert inp.batch_size == 2
    assert fake.batches[:3] == [7, 4, 2]  # 8 items at most staged: 7 -> halve -> 4 -> halve -> 2
    assert sum(b for b in fake.batches if b <= 2) == 7
    assert "retrying with batch size 4" in caplog.text and "batch size 2" in caplog.text
    ref = Inpainter(gen, device="cpu", batch_size=1)(frames, masks)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_oom_at_batch_one_is_a_clear_error() -> None:
    class AlwaysOom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")

    frames, masks = _frames(1, 16, 16)
    with pytest.raises(LamaVideoError, match="batch size 1"):
        Inpainter(AlwaysOom(), device="cpu", batch_size=2)(frames, masks)


def test_bf16_on_cpu_is_close_to_fp32() -> None:
    gen = tiny_generator(5)
    frames, masks = _frames(2, 40, 56, seed=11)
    ref = Inpainter(gen, device="cpu")(frames, masks).astype(int)
    inp = Inpainter(gen, device="cpu", precision="bf16")
    assert inp.precision == "bf16"
    out = inp(frames, masks).astype(int)
    assert np.array_equal(out[~masks], frames[~masks])
    diff = np.abs(out - ref)[masks]
    assert diff.mean() < 4 and diff.max() < 40, (diff.mean(), diff.max())


def test_fp16_on_cpu_falls_back_to_fp32(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lama_video.engines.lama"):
        inp = Inpainter(Constant(), device="cpu", precision="fp16")
    assert inp.precision == "fp32"
    assert "fp16 is not supported on CPU" in caplog.text


def test_torchscript_blended_kind() -> None:
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    class Blended(nn.Module):
        """Mimics IOPaint's big-lama.pt: (image, mask) -> already blended image."""

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            calls.append((tuple(image.shape), tuple(mask.shape)))
            assert float(image.min()) > 0  # the raw image, not the masked one
            return image * (1 - mask) + 0.75 * mask

    frames, masks = _frames(3, 21, 30, seed=2)
    frames = np.maximum(frames, 1)
    inp = Inpainter(SimpleNamespace(module=Blended(), kind="torchscript_blended"), device="cpu")
    out = inp(frames, masks)
    assert calls == [((1, 3, 24, 32), (1, 1, 24, 32))] * 3
    assert np.all(out[masks] == 191)  # 0.75 * 255 = 191.25
    assert np.array_equal(out[~masks], frames[~masks])


# ---------------------------------------------------------------------------------- contract


def test_bad_inputs_name_the_contract() -> None:
    inp = Inpainter(Constant(), device="cpu")
    frames, masks = _frames(2, 16, 16)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        inp(frames[..., :2].copy(), masks)
    with pytest.raises(ValueError, match=r"\(N, H, W\) bool"):
        inp(frames, masks[:1])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) float"):
        inp.inpaint_tensor(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        inp.inpaint_tensor(torch.zeros(1, 3, 8, 8), torch.zeros(1, 8, 8))
    with pytest.raises(ConfigError, match="precision"):
        Inpainter(Constant(), device="cpu", precision="int8")
    with pytest.raises(ConfigError, match="batch_size"):
        Inpainter(Constant(), device="cpu", batch_size=0)
    with pytest.raises(TypeError, match=r"nn\.Module or a LoadedModel"):
        Inpainter("big-lama")  # type: ignore[arg-type]


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")


# ---------------------------------------------------------------------------------- factory


def test_make_image_engine_classical(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    eng = make_image_engine(InpaintConfig(engine="ns", classical_radius_px=7))
    assert isinstance(eng, ClassicalEngine) and eng.name == "ns" and eng.radius_px == 7
    missing = str(tmp_path / "nope.ckpt")
    with caplog.at_level(logging.INFO, logger="lama_video.engines"):
        eng = make_image_engine(InpaintConfig(engine="auto", model=missing))
    assert isinstance(eng, ExemplarEngine) and eng.name == "exemplar"
    notices = [r for r in caplog.records if r.name == "lama_video.engines"]
    assert len(notices) == 1 and "lama-video weights download" in notices[0].getMessage()
    assert "exemplar engine" in notices[0].getMessage()
    with pytest.raises(WeightsError, match=r"lama-video weights download.*--model PATH"):
        make_image_engine(InpaintConfig(engine="lama", model=missing))


@pytest.mark.parametrize(("native", "expected"), [("0", "fp32"), ("1", "bf16")])
def test_auto_precision_on_cpu_is_bf16_only_with_native_bf16(monkeypatch, native, expected):
    from lama_video.engines.lama import auto_precision

    monkeypatch.setenv("LAMA_VIDEO_CPU_BF16", native)
    assert auto_precision(torch.device("cpu")) == expected
    assert Inpainter(tiny_generator(5), device="cpu").precision == expected  # the default
    blended = SimpleNamespace(module=tiny_generator(5), kind="torchscript_blended")
    assert Inpainter(blended, device="cpu").precision == "fp32"  # traced exports: fp32 only


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n", True),
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_tile amx_bf16\n", True),
        ("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", False),  # AVX-512 alone: emulated
        (None, False),  # no /proc/cpuinfo (not Linux)
    ],
)
def test_cpu_bf16_probe_reads_the_cpu_flags_without_torch_probes(
    monkeypatch, tmp_path, cpuinfo, expected
):
    from lama_video.engines import lama

    monkeypatch.delenv("LAMA_VIDEO_CPU_BF16")
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(lama, "_CPUINFO", str(path))
    assert lama._cpu_has_native_bf16() is expected


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"), [(0, 0, False), (1, 0, True), (0, 1, True)]
)
def test_cpu_bf16_probe_asks_torch_first(monkeypatch, tmp_path, avx512_bf16, amx, expected):
    from lama_video.engines import lama

    monkeypatch.delenv("LAMA_VIDEO_CPU_BF16")
    monkeypatch.setattr(
        torch.cpu, "_is_avx512_bf16_supported", lambda: bool(avx512_bf16), raising=False
    )
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: bool(amx), raising=False)
    (tmp_path / "cpuinfo").write_text("flags\t\t: avx512_bf16 amx_bf16\n")  # not read
    monkeypatch.setattr(lama, "_CPUINFO", str(tmp_path / "cpuinfo"))
    assert lama._cpu_has_native_bf16() is expected


def test_big_lama_bf16_inference_form_is_within_the_stated_tolerance_of_eager_fp32() -> None:
    # The default on CPUs with native bf16 (and on GPUs): the generator folded and run in bf16
    # as a whole. Against the eager fp32 module (the official code's computation, which the
    # Inpainter runs as given with eager=True) on a big-lama-sized generator whose activations
    # behave like a trained one's, the fill stays within the tolerance stated for bf16 autocast.
    model = big_lama_random(0)
    frames, masks = big_case(1, 256)
    ref = Inpainter(copy.deepcopy(model), device="cpu", precision="fp32", eager=True)(frames, masks)
    fp32 = Inpainter(model, device="cpu", precision="fp32")(frames, masks)
    bf16 = Inpainter(model, device="cpu", precision="bf16")(frames, masks)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the caller's is intact
    assert float(ref[masks].std()) > 20  # the fill has structure: a flat one proves nothing
    assert_within(fp32, ref, masks, BIG_TOL["fp32"], "folded fp32 vs eager fp32")
    assert_within(bf16, ref, masks, BIG_TOL["bf16"], "bf16 inference form vs eager fp32")
    assert hole_diff(bf16, ref, masks)[0] > 0.2  # and it really ran in bf16


def test_eager_runs_our_generator_as_given_and_the_default_a_folded_copy() -> None:
    model = tiny_generator(1).train()
    eager = Inpainter(model, device="cpu", precision="fp32", eager=True)
    assert eager.module is model and not model.training  # as given, in eval mode
    folded = Inpainter(model, device="cpu", precision="fp32")
    assert folded.module is not model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.module.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the caller's is intact
    frames = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    masks = np.zeros((1, 64, 64), bool)
    masks[0, 20:40, 16:48] = True
    a, b = eager(frames, masks), folded(frames, masks)
    assert np.array_equal(a[~masks], frames[~masks]) and np.array_equal(b[~masks], frames[~masks])
    assert int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1  # folding is exact but rounding
