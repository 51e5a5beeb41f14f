"""``lama-video finetune``: fine-tune LaMa weights (or train a generator) on frames or videos."""

from __future__ import annotations

import signal
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from lama_video.cli._app import app, choice, choices_metavar, run_command, state
from lama_video.train.config import (
    ARCHS,
    DEFAULT_ARCH,
    DEFAULT_DEVICE,
    DEFAULT_DILATE_PX,
    DEFAULT_MAX_FRAMES,
    PRECISIONS,
    FinetuneConfig,
)

_FT = FinetuneConfig()  # help texts quote the library's defaults, never restate them


@app.command()
def finetune(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data", "-d", help="Folder of images or video file; repeatable.", metavar="PATH"
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Run folder: config.yaml + models/*.ckpt.", metavar="PATH"
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Weights to start from (name or path); none = new --arch.",
            metavar="PATH|NAME",
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            help=f"Generator trained from scratch without --model (default {DEFAULT_ARCH}).",
            metavar=choices_metavar(*ARCHS),
            callback=choice(*ARCHS, name="--arch"),
        ),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            "-m",
            help="Object masks of the one --data clip: train only on its "
            "background (mask folder, mask video or image).",
            metavar="PATH",
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", help=f"Total steps (default {_FT.steps}).", metavar="INT"),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help=f"Crops per step (default {_FT.batch_size}).", metavar="INT"
        ),
    ] = None,
    crop: Annotated[
        int | None,
        typer.Option(
            "--crop", help=f"Crop side, a multiple of 8 (default {_FT.crop_px}).", metavar="PX"
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help=f"Where to train (default {DEFAULT_DEVICE}: CUDA when there is one).",
            metavar="[auto|cpu|cuda|cuda:N]",
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help=f"Arithmetic (default {_FT.precision}: bf16 on CUDA, else fp32).",
            metavar=choices_metavar(*PRECISIONS),
            callback=choice(*PRECISIONS, name="--precision"),
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seeds crops, holes, nets.", metavar="INT")
    ] = None,
    lr_g: Annotated[
        float | None,
        typer.Option("--lr-g", help=f"Generator lr (default {_FT.lr_g:g}).", metavar="FLOAT"),
    ] = None,
    lr_d: Annotated[
        float | None,
        typer.Option("--lr-d", help=f"Discriminator lr (default {_FT.lr_d:g}).", metavar="FLOAT"),
    ] = None,
    mask_preset: Annotated[
        str | None,
        typer.Option(
            "--mask-preset",
            help="Hole generator preset (big-lama, thin_256, medium_256, thick_256, ...).",
            metavar="NAME",
        ),
    ] = None,
    val_frames: Annotated[
        int | None,
        typer.Option(
            "--val-frames",
            help=f"Frames held back for validation (default {_FT.val_frames}).",
            metavar="INT",
        ),
    ] = None,
    val_every: Annotated[
        int | None,
        typer.Option(
            "--val-every",
            help=f"Steps between validations (default {_FT.val_every}).",
            metavar="INT",
        ),
    ] = None,
    save_every: Annotated[
        int | None,
        typer.Option(
            "--save-every",
            help=f"Steps between checkpoints (default {_FT.save_every}).",
            metavar="INT",
        ),
    ] = None,
    max_frames: Annotated[
        int | None,
        typer.Option(
            "--max-frames",
            help=f"Frames kept per --data source, evenly spaced (default {DEFAULT_MAX_FRAMES}).",
            metavar="INT",
        ),
    ] = None,
    dilate: Annotated[
        int | None,
        typer.Option(
            "--dilate",
            help=f"Grow --mask objects by PX (default {DEFAULT_DILATE_PX}).",
            metavar="PX",
        ),
    ] = None,
    hrf_weight: Annotated[
        float | None,
        typer.Option(
            "--hrf-weight",
            help=f"HRF perceptual loss weight (default {_FT.losses.hrf_perceptual:g}; 0 = off).",
            metavar="FLOAT",
        ),
    ] = None,
    hrf_weights: Annotated[
        Path | None,
        typer.Option(
            "--hrf-weights",
            help="ade20k-resnet50dilated encoder_epoch_20.pth "
            "(default: the lama-video cache folder).",
            metavar="PATH",
        ),
    ] = None,
    discriminator: Annotated[
        Path | None,
        typer.Option(
            "--discriminator",
            help="Discriminator weights to start from (LaMa "
            "training checkpoint or a run's last.ckpt).",
            metavar="PATH",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --output from models/last.ckpt.")
    ] = False,
    trust_checkpoint: Annotated[
        bool,
        typer.Option(
            "--trust-checkpoint",
            help="Allow --model to run code: full unpickling, TorchScript (trusted only).",
        ),
    ] = False,
) -> None:
    """Fine-tune the inpainting generator with LaMa's recipe; the result loads with --model OUTPUT.

    Random crops of the frames get LaMa's aggressive holes; the generator learns to fill them
    (known-pixel L1, adversarial, feature matching, high-receptive-field perceptual losses).
    With --mask, the clip's own background is the only training target (internal learning).
    Ctrl-C saves models/last.ckpt after the current step and exits 130; --resume continues.
    """
    from lama_video.train.config import LossWeights
    from lama_video.train.trainer import finetune as run_finetune

    given: dict[str, Any] = {
        "steps": steps,
        "batch_size": batch_size,
        "crop_px": crop,
        "precision": precision,
        "seed": seed,
        "lr_g": lr_g,
        "lr_d": lr_d,
        "mask_preset": mask_preset,
        "val_frames": val_frames,
        "val_every": val_every,
        "save_every": save_every,
    }
    names = {f.name for f in fields(FinetuneConfig)}
    cfg = FinetuneConfig(**{k: v for k, v in given.items() if v is not None and k in names})
    if hrf_weight is not None:
        cfg = replace(cfg, losses=replace(LossWeights(), hrf_perceptual=hrf_weight))

    from tqdm import tqdm

    stop_requested = False

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal stop_requested
        if stop_requested:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop_requested = True
        tqdm.write("stopping after this step (Ctrl-C again to abort at once)")

    def job() -> None:
        # Bars are made on first use, so an early error (missing weights) prints no empty bar.
        bars: dict[str, tqdm] = {}

        def bar(name: str, **kwargs: Any) -> tqdm:
            if name not in bars:
                bars[name] = tqdm(desc=name, disable=state.quiet, dynamic_ncols=True, **kwargs)
            return bars[name]

        def on_frame(n: int) -> None:
            bar("load", unit="frame").update(n)

        def on_step(step: int, losses: dict[str, float]) -> None:
            if "load" in bars:  # the first step ends the loading phase
                bars.pop("load").close()
            b = bar("finetune", total=cfg.steps, unit="step", initial=step - 1)
            b.update(step - b.n)
            b.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)

        def close_bars() -> None:
            for b in bars.values():
                b.close()

        try:  # a signal handler can only be installed from the main thread
            previous = signal.signal(signal.SIGINT, on_sigint)
            # SIGTERM (timeout, systemd, docker stop) stops after the step too, saving the state.
            previous_term = signal.signal(signal.SIGTERM, on_sigint)
        except ValueError:
            previous = previous_term = None
        try:
            result = run_finetune(
                data=data,
                out_dir=output,
                cfg=cfg,
                model=model,
                mask=mask,
                # not given: the library's defaults (lama_video.train.config)
                arch=DEFAULT_ARCH if arch is None else arch,
                dilate_px=DEFAULT_DILATE_PX if dilate is None else dilate,
                max_frames=DEFAULT_MAX_FRAMES if max_frames is None else max_frames,
                device=DEFAULT_DEVICE if device is None else device,
                resume=resume,
                discriminator=discriminator,
                hrf_weights=hrf_weights,
                trust_checkpoint=trust_checkpoint,
                progress=on_step,
                load_progress=on_frame,
                stop=lambda: stop_requested,
            )
        except KeyboardInterrupt:
            close_bars()
            last = output / "models" / "last.ckpt"
            if last.exists():
                typer.echo(
                    f"interrupted: training state saved to {last}; continue with --resume", err=True
                )
            else:
                typer.echo("interrupted before the first step: nothing was saved", err=True)
            raise typer.Exit(130) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)
            close_bars()
        if state.quiet:
            return
        line = f"done: {result.step} steps ({result.steps_per_s:.2f} steps/s)"
        if result.history:
            best = max(result.history, key=lambda r: r["psnr"])
            start = result.start_metrics or {}
            line += (
                f"; hole PSNR {start.get('psnr', float('nan')):.2f} -> {best['psnr']:.2f} dB"
                f", SSIM {start.get('ssim', float('nan')):.4f} -> {best['ssim']:.4f}"
                f" (step {best['step']})"
            )
        typer.echo(line)
        typer.echo(f"model: --model {Path(result.out_dir)}")

    run_command(job)
