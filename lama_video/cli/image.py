"""``lama-video image``: inpaint one image, or a folder in LaMa's prediction layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lama_video.cli._app import app, run_command, state
from lama_video.cli.remove import (
    ConfigOpt,
    DeviceOpt,
    DilateOpt,
    EngineOpt,
    ModelOpt,
    OverwriteOpt,
    PrecisionOpt,
    TrustOpt,
    build_config,
)


@app.command()
def image(
    source: Annotated[
        Path,
        typer.Argument(
            help="An image file (with --mask), or a folder of name.png + "
            "name_mask*.png pairs (LaMa's layout).",
            metavar="SOURCE",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Output image file (or folder, for a folder).", metavar="PATH"
        ),
    ],
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask", "-m", help="Mask of a single IMAGE (white = remove).", metavar="PATH"
        ),
    ] = None,
    img_suffix: Annotated[
        str,
        typer.Option(
            "--img-suffix",
            help="Image suffix in folder mode (LaMa's img_suffix).",
            metavar="SUFFIX",
        ),
    ] = ".png",
    config: ConfigOpt = None,
    engine: EngineOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    dilate: DilateOpt = None,
    trust_checkpoint: TrustOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Remove the masked regions of still images (--dilate 0 reproduces LaMa's own output)."""
    if source.is_dir() and mask is not None:
        raise typer.BadParameter(
            "--mask is only for a single image; a folder pairs its own masks", param_hint="--mask"
        )
    if not source.is_dir() and source.exists() and mask is None:
        raise typer.BadParameter("a single image needs --mask MASK", param_hint="--mask")

    def job() -> None:
        from tqdm import tqdm

        from lama_video.engines import make_image_engine
        from lama_video.modes.image import find_pairs, run_folder, run_image

        cfg = build_config(
            config,
            masks={"dilate_px": dilate},
            inpaint={
                "engine": engine,
                "model": model,
                "device": device,
                "precision": precision,
                "trust_checkpoint": trust_checkpoint or None,
            },
        )
        if source.is_dir():
            total = len(find_pairs(source, output, img_suffix=img_suffix))  # fail before loading
            eng = make_image_engine(cfg.inpaint)
            with tqdm(total=total, unit="image", disable=state.quiet, desc="image") as bar:
                pairs = run_folder(
                    source,
                    output,
                    eng,
                    cfg.masks,
                    img_suffix=img_suffix,
                    overwrite=overwrite,
                    progress=bar.update,
                )
            if not state.quiet:
                typer.echo(f"wrote {len(pairs)} image(s) to {output} ({eng.name})", err=True)
        else:
            from lama_video.modes.image import check_output, single_output_path
            from lama_video.video import read_image

            assert mask is not None  # checked above
            # Input and output problems fail before the model loads.
            read_image(source)
            check_output(single_output_path(source, output), (source, mask), overwrite)
            eng = make_image_engine(cfg.inpaint)
            written = run_image(source, mask, output, eng, cfg.masks, overwrite=overwrite)
            if not state.quiet:
                typer.echo(f"wrote {written} ({eng.name})", err=True)

    run_command(job)
