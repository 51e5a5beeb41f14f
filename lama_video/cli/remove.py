"""``lama-video remove``: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from lama_video.cli._app import app, run_command, state
from lama_video.config import RunConfig, load_config
from lama_video.errors import MaskError
from lama_video.masks import Box, keyframes_from_folder

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML preset (see configs/default.yaml).")
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", help="Image engine: auto (LaMa if weights found), lama, telea, ns."),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="LaMa weights: a path (folder, zip, .ckpt/.pt, .safetensors) "
        "or a registry name looked up in the cache.",
    ),
]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
PrecisionOpt = Annotated[str | None, typer.Option("--precision", help="fp32, fp16 or bf16.")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Crops per model forward pass.")]
DilateOpt = Annotated[
    int | None, typer.Option("--dilate", help="Grow holes by PX pixels (default 4).")
]
TrustOpt = Annotated[
    bool,
    typer.Option("--trust-checkpoint", help="Fully unpickle a checkpoint (only files you trust)."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
TemporalOpt = Annotated[
    bool | None,
    typer.Option(
        "--temporal/--no-temporal",
        help="Flow-guided temporal engine (default) or each frame alone.",
    ),
]
CodecOpt = Annotated[str | None, typer.Option("--codec", help="Video encoder (default libx264).")]
CrfOpt = Annotated[int | None, typer.Option("--crf", help="Quality, lower is better (default 18).")]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="Encoder preset (default medium).")]
AudioOpt = Annotated[str | None, typer.Option("--audio", help="copy (default), aac or none.")]


def parse_keyframe(text: str) -> tuple[int, Path]:
    """``"FRAME:PATH"`` -> (frame index, path)."""
    idx, sep, path = text.partition(":")
    if not sep or not idx.strip().isdigit() or not path:
        raise MaskError(
            f"--keyframe-mask {text!r}: expected FRAME:PATH with a 0-based frame number, "
            "e.g. --keyframe-mask 0:mask.png"
        )
    return int(idx), Path(path)


def build_config(config: Path | None, **sections: dict[str, object]) -> RunConfig:
    """Defaults < YAML < flags (``None`` flags are not applied)."""
    return load_config(config, {k: v for k, v in sections.items()})  # type: ignore[arg-type]


def run_config(
    config: Path | None,
    *,
    dilate: int | None,
    engine: str | None,
    model: str | None,
    device: str | None,
    precision: str | None,
    batch_size: int | None,
    trust_checkpoint: bool,
    temporal: bool | None,
    codec: str | None,
    crf: int | None,
    preset: str | None,
    audio: str | None,
) -> RunConfig:
    """The RunConfig of the flags that ``remove`` and ``batch`` share (``None`` = not given)."""
    return build_config(
        config,
        masks={"dilate_px": dilate},
        inpaint={
            "engine": engine,
            "model": model,
            "device": device,
            "precision": precision,
            "batch_size": batch_size,
            "trust_checkpoint": trust_checkpoint or None,
        },
        temporal={"enabled": temporal},
        encode={"codec": codec, "crf": crf, "preset": preset, "audio": audio},
    )


@app.command()
def remove(
    input: Annotated[Path, typer.Argument(help="Input video file or folder of frames.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output video, or folder for PNGs.")
    ],
    mask: Annotated[
        Path | None, typer.Option("--mask", "-m", help="Mask folder, mask video or one mask image.")
    ] = None,
    box: Annotated[str | None, typer.Option("--box", help="Remove a fixed box X,Y,W,H.")] = None,
    keyframe_mask: Annotated[
        list[str] | None,
        typer.Option(
            "--keyframe-mask", help="FRAME:PATH, repeatable: masks tracked through the clip."
        ),
    ] = None,
    keyframes: Annotated[
        bool,
        typer.Option("--keyframes", help="The --mask folder holds masks for some frames only."),
    ] = False,
    config: ConfigOpt = None,
    engine: EngineOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    batch_size: BatchOpt = None,
    dilate: DilateOpt = None,
    temporal: TemporalOpt = None,
    codec: CodecOpt = None,
    crf: CrfOpt = None,
    preset: PresetOpt = None,
    audio: AudioOpt = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Drop the audio.")] = False,
    trust_checkpoint: TrustOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Remove the masked object from INPUT and write OUTPUT with the original timing and audio."""

    sources = sum(x is not None for x in (mask, box)) + bool(keyframe_mask)
    if sources != 1:
        raise typer.BadParameter(
            f"expected exactly one mask source (got {sources}): --mask PATH, --box X,Y,W,H or "
            "--keyframe-mask FRAME:PATH"
        )

    def job() -> None:
        from lama_video.pipeline import remove_object

        cfg = run_config(
            config,
            dilate=dilate,
            engine=engine,
            model=model,
            device=device,
            precision=precision,
            batch_size=batch_size,
            trust_checkpoint=trust_checkpoint,
            temporal=temporal,
            codec=codec,
            crf=crf,
            preset=preset,
            audio="none" if no_audio else audio,
        )
        kf: dict[int, Path] | None = None
        mask_src: Path | Box | None = mask
        if keyframe_mask:
            kf = dict(parse_keyframe(t) for t in keyframe_mask)
        elif keyframes and mask is not None:
            kf, mask_src = keyframes_from_folder(mask), None
        elif box is not None:
            mask_src = Box.parse(box)

        bars: list[tqdm] = []

        def on_start(total: int | None) -> None:
            if kf:
                # Tracking runs first (forward over the clip, back from the last keyframe).
                bars.append(
                    tqdm(
                        total=total + max(kf) if total else None,
                        unit="frame",
                        disable=state.quiet,
                        dynamic_ncols=True,
                        desc="track",
                    )
                )
            bars.append(
                tqdm(
                    total=total,
                    unit="frame",
                    disable=state.quiet,
                    dynamic_ncols=True,
                    desc="remove",
                )
            )

        try:
            result = remove_object(
                input,
                mask_src,
                output,
                config=cfg,
                keyframe_masks=kf,
                overwrite=overwrite,
                progress=lambda n: bars[-1].update(n),
                on_start=on_start,
                track_progress=lambda n: bars[0].update(n),
            )
        finally:
            for bar in bars:
                bar.close()
        if not state.quiet:
            fps = result.frames / result.seconds if result.seconds > 0 else 0.0
            typer.echo(
                f"wrote {result.output} ({result.frames} frames, {result.engine}, "
                f"{fps:.1f} frames/s)",
                err=True,
            )

    run_command(job)
