"""``lama-video remove``: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lama_video.cli._app import app, choice, choices_metavar, run_command, state
from lama_video.config import AUDIO_MODES, ENGINES, PRECISIONS, RunConfig, load_config
from lama_video.errors import MaskError

if TYPE_CHECKING:  # the masks module imports OpenCV and PyAV: not for --help
    from lama_video.masks import Box

_DEFAULTS = RunConfig()  # help texts quote the library's defaults, never restate them

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", metavar="PATH", help="YAML preset (see configs/default.yaml)."),
]
EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        metavar=choices_metavar(*ENGINES),
        callback=choice(*ENGINES, name="--engine"),
        help=(
            "Image engine; auto (default) is LaMa if its weights are found, else exemplar "
            "(PatchMatch texture synthesis)."
        ),
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="PATH|NAME",
        help="LaMa weights: a path (folder, zip, .ckpt/.pt, .safetensors) "
        f"or a registry name looked up in the cache (default {_DEFAULTS.inpaint.model}).",
    ),
]


def _check_device(value: str | None) -> str | None:
    if value is None or value in ("auto", "cpu", "cuda", "mps"):
        return value
    if value.startswith("cuda:") and value[5:].isdigit():
        return value
    raise typer.BadParameter(
        f"{value!r} is not one of auto, cpu, cuda, cuda:N, mps", param_hint="'--device'"
    )


DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        metavar="[auto|cpu|cuda|cuda:N|mps]",
        callback=_check_device,
        help=f"Where LaMa runs (default {_DEFAULTS.inpaint.device}).",
    ),
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        metavar=choices_metavar(*PRECISIONS),
        callback=choice(*PRECISIONS, name="--precision"),
        help=f"LaMa's arithmetic (default {_DEFAULTS.inpaint.precision}).",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        metavar="INT",
        min=1,
        help=f"Crops per model forward pass (default {_DEFAULTS.inpaint.batch_size}).",
    ),
]
DilateOpt = Annotated[
    int | None,
    typer.Option(
        "--dilate",
        metavar="PX",
        min=0,
        help=f"Grow holes by PX pixels (default {_DEFAULTS.masks.dilate_px}; 0 = masks as given).",
    ),
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Allow a checkpoint to run code: full unpickling, TorchScript (only files you trust).",
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace an existing output that lama-video wrote."),
]
TemporalOpt = Annotated[
    bool | None,
    typer.Option(
        "--temporal/--no-temporal",
        help="Flow-guided temporal engine (default) or each frame alone.",
    ),
]
CodecOpt = Annotated[
    str | None,
    typer.Option(
        "--codec", metavar="NAME", help=f"Video encoder (default {_DEFAULTS.encode.codec})."
    ),
]
CrfOpt = Annotated[
    int | None,
    typer.Option(
        "--crf",
        metavar="INT",
        min=0,
        max=63,
        help=f"Quality, lower is better (default {_DEFAULTS.encode.crf}).",
    ),
]
PresetOpt = Annotated[
    str | None,
    typer.Option(
        "--preset", metavar="NAME", help=f"Encoder preset (default {_DEFAULTS.encode.preset})."
    ),
]
AudioOpt = Annotated[
    str | None,
    typer.Option(
        "--audio",
        metavar=choices_metavar(*AUDIO_MODES),
        callback=choice(*AUDIO_MODES, name="--audio"),
        help=f"Audio streams (default {_DEFAULTS.encode.audio}).",
    ),
]


def parse_keyframe(
    text: str, flag: str = "--keyframe-mask", example: str = "0:mask.png"
) -> tuple[int, Path]:
    """``"FRAME:PATH"`` -> (frame index, path)."""
    idx, sep, path = text.partition(":")
    if not sep or not idx.strip().isdigit() or not path:
        raise MaskError(
            f"{flag} {text!r}: expected FRAME:PATH with a 0-based frame number, "
            f"e.g. {flag} {example}"
        )
    return int(idx), Path(path)


def parse_references(texts: list[str] | None) -> dict[int, Path] | None:
    """``--reference FRAME:IMAGE`` (or ``FOLDER``: images named by frame number) values ->
    {frame index: image}; a frame given twice is an error."""
    from lama_video.masks import keyframes_from_folder

    if not texts:
        return None
    out: dict[int, Path] = {}
    for text in texts:
        if Path(text).is_dir():
            given = list(keyframes_from_folder(Path(text), "clean plate").items())
        else:
            given = [parse_keyframe(text, "--reference", "40:plate.png")]
        for idx, path in given:
            if idx in out:
                raise MaskError(
                    f"--reference gives frame {idx} twice ({str(out[idx])!r} and "
                    f"{str(path)!r}); expected one clean plate per frame"
                )
            out[idx] = path
    return out


def build_config(config: Path | None, **sections: dict[str, object]) -> RunConfig:
    """Defaults < YAML < flags (``None`` flags are not applied)."""
    return load_config(config, {k: v for k, v in sections.items()})


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
    subtitles: str | None = None,
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
        encode={
            "codec": codec,
            "crf": crf,
            "preset": preset,
            "audio": audio,
            "subtitles": subtitles,
        },
    )


@app.command()
def remove(
    input: Annotated[
        Path, typer.Argument(help="Input video file or folder of frames.", metavar="INPUT")
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Output video, or folder for PNGs.", metavar="PATH"),
    ],
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask", "-m", help="Mask folder, mask video or one mask image.", metavar="PATH"
        ),
    ] = None,
    box: Annotated[
        str | None, typer.Option("--box", help="Remove a fixed box X,Y,W,H.", metavar="X,Y,W,H")
    ] = None,
    keyframe_mask: Annotated[
        list[str] | None,
        typer.Option(
            "--keyframe-mask",
            help="FRAME:PATH, repeatable: masks tracked through the clip (an empty mask: the "
            "object is absent there, and the tracks stop at it).",
            metavar="FRAME:PATH",
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
    no_subtitles: Annotated[
        bool, typer.Option("--no-subtitles", help="Drop the subtitle streams.")
    ] = False,
    trust_checkpoint: TrustOpt = False,
    overwrite: OverwriteOpt = False,
    qc: Annotated[
        Path | None,
        typer.Option(
            "--qc",
            metavar="PATH",
            help="Also write a review video (or PNG folder): hole pixels tinted green where "
            "copied from other frames, magenta where invented, orange where unsure.",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="PATH",
            help="Also write a JSON report: per frame, the share of hole pixels propagated / "
            "invented / unsure, and the frames most worth a look.",
        ),
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            metavar="FRAME:IMAGE|DIR",
            help="FRAME:IMAGE, repeatable (or a folder of images named by frame number): a clean "
            "plate, that frame with the object removed by hand. What no frame shows is taken "
            "from the nearest plate instead of invented.",
        ),
    ] = None,
    clean_plate: Annotated[
        list[Path] | None,
        typer.Option(
            "--clean-plate",
            metavar="IMAGE",
            help="Repeatable: a picture of the empty scene that is no frame of the clip (shot "
            "on set, any size), aligned to each frame where it fits.",
        ),
    ] = None,
    overlay: Annotated[
        str | None,
        typer.Option(
            "--overlay",
            metavar="auto|PATH",
            help="Also remove a static logo, watermark or burnt-in text: auto finds it, PATH is "
            "one mask image of it. Semi-transparent parts are un-blended, not invented.",
        ),
    ] = None,
    frame_range: Annotated[
        str | None,
        typer.Option(
            "--range",
            metavar="START:END",
            help="Change only these frames, START up to END (not included): frame numbers "
            "(120:300) or seconds (4.5s:10s); one side may be left out. The others are written "
            "as they are.",
        ),
    ] = None,
) -> None:
    """Remove the masked object from INPUT; OUTPUT keeps its timing, audio and subtitles."""

    sources = sum(x is not None for x in (mask, box)) + bool(keyframe_mask)
    if sources > 1 or (sources == 0 and overlay is None):
        raise typer.BadParameter(
            f"expected exactly one mask source (got {sources}): --mask PATH, --box X,Y,W,H or "
            "--keyframe-mask FRAME:PATH (or --overlay auto|PATH alone)"
        )

    def job() -> None:
        from tqdm import tqdm

        from lama_video.masks import Box, FrameRange, keyframes_from_folder
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
            subtitles="none" if no_subtitles else None,
        )
        plates = parse_references(reference)
        kf: dict[int, Path] | None = None
        mask_src: Path | Box | None = mask
        if keyframe_mask:
            kf = dict(parse_keyframe(t) for t in keyframe_mask)
        elif keyframes and mask is not None:
            kf, mask_src = keyframes_from_folder(mask), None
        elif box is not None:
            mask_src = Box.parse(box)
        within = FrameRange.parse(frame_range) if frame_range is not None else None

        bars: list[tqdm] = []

        def on_start(total: int | None) -> None:
            if kf:
                # Tracking runs first (forward over the clip, back from the last keyframe).
                from lama_video.propagate import tracking_steps

                bars.append(
                    tqdm(
                        total=tracking_steps(total, kf) if total else None,
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
                qc=qc,
                report=report,
                overlay=overlay,
                references=plates,
                scene_plates=clean_plate or None,
                frames=within,
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
