"""Tests of lama_video.train (data, trainer, checkpoints) and the ``finetune`` command.

Everything runs on synthetic frames written to tmp_path, with the tiny generator (ngf 8,
1 block) on 32-px crops and the HRF perceptual loss off (its ADE20k weights are not shipped).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lama_video.errors import ConfigError
from lama_video.model.generator import FFCResNetGenerator
from lama_video.model.weights import load_model
from lama_video.train.config import LossWeights
from lama_video.train.data import (
    CropSampler,
    FrameSet,
    hole_psnr,
    hole_ssim,
    load_frames,
    split_holdout,
)
from lama_video.train.masks import MaskGenerator, get_preset, scale_mix
from lama_video.train.trainer import ARCHS, FinetuneConfig, Finetuner, finetune
from lama_video.video import write_png

NO_HRF = LossWeights(hrf_perceptual=0.0)


def _frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth gradient + a moving bar: learnable, different per frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 3 + i * 5, yy * 4, (xx + yy) * 2 + 20], axis=-1).astype(np.float64)
    img[:, (i * 4) % w : (i * 4) % w + 4] = 230
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture()
def frames_dir(tmp_path: Path) -> Path:
    d = tmp_path / "frames"
    d.mkdir()
    for i in range(6):
        write_png(d / f"{i:05d}.png", _frame(i))
    return d


@pytest.fixture()
def masks_dir(tmp_path: Path) -> Path:
    d = tmp_path / "masks"
    d.mkdir()
    for i in range(6):
        m = np.zeros((48, 64, 3), np.uint8)
        m[10:20, 8 + i : 18 + i] = 255
        write_png(d / f"{i:05d}.png", m)
    return d


def _cfg(**kw: object) -> FinetuneConfig:
    base = FinetuneConfig(
        steps=4,
        batch_size=2,
        crop_px=32,
        val_frames=2,
        val_every=2,
        save_every=2,
        seed=3,
        losses=NO_HRF,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_hole_metrics_by_hand() -> None:
    target = torch.zeros(1, 3, 4, 4)
    pred = target.clone()
    region = torch.zeros(1, 1, 4, 4)
    region[..., :2, :] = 1
    assert hole_psnr(pred, target, region) == math.inf
    assert hole_ssim(pred, target, region) == pytest.approx(1.0)
    pred[..., :2, :] = 0.1  # MSE 0.01 in the region -> 20 dB
    pred[..., 2:, :] = 0.9  # outside the region: ignored
    assert hole_psnr(pred, target, region) == pytest.approx(20.0)
    assert math.isnan(hole_psnr(pred, target, torch.zeros_like(region)))


def test_split_holdout() -> None:
    train, val = split_holdout(10, 3)
    assert len(val) == 3 and not set(val) & set(train) and len(train) == 7
    assert 0 not in val and 9 not in val  # evenly spaced inside the clip
    assert split_holdout(5, 0) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(ConfigError, match="validation"):
        split_holdout(2, 2)


def test_load_frames_with_object_masks(frames_dir: Path, masks_dir: Path) -> None:
    fs = load_frames([frames_dir], mask=masks_dir, dilate_px=2, max_frames=3)
    assert len(fs) == 3 and fs.names == ["frames#0", "frames#2", "frames#4"]  # every 2nd frame
    assert fs.objects is not None and fs.objects[1].shape == (48, 64)
    obj = fs.objects[1]  # frame 2: box rows 10..19, cols 10..19, dilated by 2
    assert obj[10:20, 10:20].all() and obj[8, 12] and not obj[7, 12] and not obj[30, 40]
    with pytest.raises(ConfigError, match="exactly one --data"):
        load_frames([frames_dir, frames_dir], mask=masks_dir)


def test_generated_holes_always_cover_the_object() -> None:
    rng = np.random.default_rng(0)
    img = np.full((40, 40, 3), 100, np.uint8)
    obj = np.zeros((40, 40), bool)
    obj[5:35, 5:35] = True
    fs = FrameSet([img, img], [obj, obj], ["a", "b"])
    mix = scale_mix(get_preset("big-lama"), 32)
    sampler = CropSampler(fs, crop_px=32, masks=MaskGenerator(mix, rng=rng), rng=rng)
    batch = sampler.batch(8)
    assert batch.ignore is not None and batch.ignore.sum() > 0
    assert (batch.holes >= batch.ignore).all()
    assert batch.images.shape == (8, 3, 32, 32) and batch.holes.shape == (8, 1, 32, 32)


def test_small_frames_are_upscaled_to_the_crop() -> None:
    rng = np.random.default_rng(0)
    fs = FrameSet([np.zeros((20, 30, 3), np.uint8)], None, ["small"])
    sampler = CropSampler(fs, crop_px=32, masks=MaskGenerator("thin_256", rng=rng), rng=rng)
    assert sampler.batch(1).images.shape == (1, 3, 32, 32)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    frames = FrameSet([_frame(i) for i in range(3)], None, ["a", "b", "c"])
    gen = FFCResNetGenerator.from_arch(ARCHS["tiny"])
    trainer = Finetuner(
        gen,
        ARCHS["tiny"],
        frames,
        frames.subset([]),
        "unused",
        _cfg(steps=10, val_frames=0),
        device=torch.device("cpu"),
    )
    batch = trainer.sampler.batch(2)
    losses = [trainer.train_step(batch) for _ in range(10)]
    # the generator's total loss falls fast (feature matching first), the known-pixel L1 too
    assert losses[-1]["g"] < 0.6 * losses[0]["g"]
    assert losses[-1]["fm"] < 0.5 * losses[0]["fm"]
    assert losses[-1]["l1"] < losses[0]["l1"]
    assert all(math.isfinite(v) for step in losses for v in step.values())
    assert losses[0]["r1"] > 0


def test_checkpoint_loads_strictly_with_the_same_output(tmp_path: Path) -> None:
    torch.manual_seed(0)
    frames = FrameSet([_frame(i) for i in range(3)], None, ["a", "b", "c"])
    out = tmp_path / "run"
    trainer = Finetuner(
        FFCResNetGenerator.from_arch(ARCHS["tiny"]),
        ARCHS["tiny"],
        frames,
        frames.subset([]),
        out,
        _cfg(val_frames=0),
        device=torch.device("cpu"),
    )
    result = trainer.run()
    assert result.step == 4 and result.best_step == 4
    assert (out / "config.yaml").is_file() and (out / "models" / "best.ckpt").is_file()
    best = torch.load(out / "models" / "best.ckpt", weights_only=True)
    assert set(best) == {"state_dict"}
    assert all(k.startswith("generator.model.") for k in best["state_dict"])
    loaded = load_model(out)  # the model helper's strict loader, as every --model does
    assert loaded.kind == "generator" and loaded.arch == ARCHS["tiny"]
    x = torch.rand(2, 4, 32, 48)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), trainer.G.eval()(x))


def test_validation_reports_start_and_progress(frames_dir: Path, tmp_path: Path) -> None:
    result = finetune(
        data=[frames_dir], out_dir=tmp_path / "run", cfg=_cfg(), arch="tiny", device="cpu"
    )
    assert result.start_metrics is not None and set(result.start_metrics) == {"psnr", "ssim"}
    assert [h["step"] for h in result.history] == [2, 4]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"start_psnr"' in lines[0]
    best = max(result.history, key=lambda h: h["psnr"])
    assert result.best_step == best["step"]
    # best.ckpt holds the generator of the best validation, which config.yaml names
    assert f"  step: {best['step']}\n" in (tmp_path / "run" / "config.yaml").read_text()


def test_resume_continues_from_the_same_step(frames_dir: Path, tmp_path: Path) -> None:
    straight = finetune(
        data=[frames_dir], out_dir=tmp_path / "a", cfg=_cfg(val_frames=0), arch="tiny", device="cpu"
    )
    assert straight.step == 4
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(KeyboardInterrupt):
        finetune(
            data=[frames_dir],
            out_dir=tmp_path / "b",
            cfg=_cfg(val_frames=0, save_every=100),
            arch="tiny",
            device="cpu",
            stop=stop_after_two,
        )
    state = torch.load(tmp_path / "b" / "models" / "last.ckpt", weights_only=True)
    assert state["step"] == 2
    with pytest.raises(ConfigError, match="--resume"):
        finetune(
            data=[frames_dir],
            out_dir=tmp_path / "b",
            cfg=_cfg(val_frames=0),
            arch="tiny",
            device="cpu",
        )
    resumed = finetune(
        data=[frames_dir],
        out_dir=tmp_path / "b",
        cfg=_cfg(val_frames=0),
        arch="tiny",
        device="cpu",
        resume=True,
    )
    assert resumed.step == 4
    a = torch.load(tmp_path / "a" / "models" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "b" / "models" / "last.ckpt", weights_only=True)
    # same random draws and optimizer states: the interrupted run ends where the straight one does
    for key, value in a["generator"].items():
        assert torch.allclose(value.float(), b["generator"][key].float(), atol=1e-6), key
    assert a["rng"] == b["rng"]


def test_internal_learning_run(frames_dir: Path, masks_dir: Path, tmp_path: Path) -> None:
    result = finetune(
        data=[frames_dir],
        mask=masks_dir,
        out_dir=tmp_path / "run",
        cfg=_cfg(steps=2, val_every=2),
        arch="tiny",
        device="cpu",
    )
    assert result.step == 2 and len(result.history) == 1
    assert math.isfinite(result.history[0]["psnr"])


def test_finetune_command(
    frames_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lama_video.cli import app

    monkeypatch.setenv("LAMA_VIDEO_HOME", str(tmp_path / "empty-cache"))
    runner = CliRunner()
    out = tmp_path / "run"
    args = [
        "finetune",
        "--arch",
        "tiny",
        "--data",
        str(frames_dir),
        "-o",
        str(out),
        "--steps",
        "2",
        "--crop",
        "32",
        "--batch-size",
        "1",
        "--device",
        "cpu",
        "--val-frames",
        "1",
    ]
    missing = runner.invoke(app, [*args, "--seed", "1"])
    assert missing.exit_code == 1
    assert "encoder_epoch_20.pth" in missing.output and "--hrf-weight 0" in missing.output
    res = runner.invoke(app, ["-q", *args, "--hrf-weight", "0"])
    assert res.exit_code == 0, res.output
    assert load_model(out).arch == ARCHS["tiny"]
    again = runner.invoke(app, [*args, "--hrf-weight", "0"])
    assert again.exit_code == 1 and "--resume" in again.output
    more = runner.invoke(
        app,
        [
            "-q",
            *args[:-6],
            "--steps",
            "3",
            "--device",
            "cpu",
            "--val-frames",
            "1",
            "--hrf-weight",
            "0",
            "--resume",
        ],
    )
    assert more.exit_code == 0, more.output
    assert torch.load(out / "models" / "last.ckpt", weights_only=True)["step"] == 3


def test_bf16_autocast_step_with_hrf_loss() -> None:
    from lama_video.train.losses import ResNet50Dilated

    torch.manual_seed(0)
    frames = FrameSet([_frame(i) for i in range(2)], None, ["a", "b"])
    gen = FFCResNetGenerator.from_arch(ARCHS["tiny"])
    # the CUDA path (bf16 autocast, FFTs kept in fp32, R1 double backward) exercised on CPU
    trainer = Finetuner(
        gen,
        ARCHS["tiny"],
        frames,
        frames.subset([1]),
        "unused",
        _cfg(precision="bf16", losses=LossWeights()),
        device=torch.device("cpu"),
        hrf_encoder=ResNet50Dilated(),
    )
    assert trainer.amp_dtype == torch.bfloat16
    losses = trainer.train_step(trainer.sampler.batch(2))
    assert all(math.isfinite(v) for v in losses.values()) and losses["hrf"] > 0
    assert math.isfinite(trainer.evaluate()["psnr"])  # type: ignore[index]
    with pytest.raises(ConfigError, match="HRF"):
        Finetuner(
            gen,
            ARCHS["tiny"],
            frames,
            frames.subset([]),
            "unused",
            _cfg(losses=LossWeights()),
            device=torch.device("cpu"),
        )


def test_finetune_command_ctrl_c_saves_and_exits_130(
    frames_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lama_video.train.trainer as trainer_mod
    from lama_video.cli import app

    real = trainer_mod.finetune

    def interrupted(**kwargs: object) -> object:
        return real(**{**kwargs, "stop": lambda: True})  # as if Ctrl-C came during step 1

    monkeypatch.setattr(trainer_mod, "finetune", interrupted)
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "finetune",
            "--arch",
            "tiny",
            "--data",
            str(frames_dir),
            "-o",
            str(out),
            "--steps",
            "5",
            "--crop",
            "32",
            "--device",
            "cpu",
            "--hrf-weight",
            "0",
            "--val-frames",
            "0",
        ],
    )
    assert res.exit_code == 130
    assert "--resume" in res.output
    assert torch.load(out / "models" / "last.ckpt", weights_only=True)["step"] == 1


def test_cli_and_library_share_one_set_of_defaults(tmp_path: Path) -> None:
    import inspect

    from lama_video.cli import app
    from lama_video.train import config as train_config

    params = inspect.signature(finetune).parameters
    assert params["arch"].default == train_config.DEFAULT_ARCH == "big-lama"
    assert params["dilate_px"].default == train_config.DEFAULT_DILATE_PX
    assert params["max_frames"].default == train_config.DEFAULT_MAX_FRAMES
    runner = CliRunner()
    text = runner.invoke(app, ["finetune", "--help"], terminal_width=200).output
    ft = FinetuneConfig()
    assert f"default {train_config.DEFAULT_ARCH})" in text
    assert f"Total steps (default {ft.steps})" in text
    assert f"(default {ft.losses.hrf_perceptual:g}; 0 = off)" in text
    bad = runner.invoke(
        app, ["finetune", "--data", str(tmp_path), "-o", str(tmp_path / "o"), "--arch", "huge"]
    )
    assert bad.exit_code == 2 and "is not one of" in bad.output
