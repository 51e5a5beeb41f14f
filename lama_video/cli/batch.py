"""``lama-video batch``: clean a folder of recordings or a job file; resumable; local or Ray."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lama_video.cli._app import app, run_command, state
from lama_video.cli.remove import (
    AudioOpt,
    BatchOpt,
    CodecOpt,
    ConfigOpt,
    CrfOpt,
    DeviceOpt,
    DilateOpt,
    EngineOpt,
    ModelOpt,
    PrecisionOpt,
    PresetOpt,
    TemporalOpt,
    TrustOpt,
    run_config,
)


@app.command()
def batch(
    source: Annotated[
        Path,
        typer.Argument(
            help="Folder of recordings (clip.mp4 + clip_masks/, clip_mask.png, clip_mask.mp4 or "
            "clip_keyframes/) or a .yaml/.csv job file.",
            metavar="SOURCE",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Output folder (holds batch-manifest.json).", metavar="PATH"
        ),
    ],
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-j", min=1, help="Worker processes (one GPU each).", metavar="INT"
        ),
    ] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Run on Ray: auto (running cluster), local, or a cluster address. "
            r"Needs pip install 'lama-video\[ray]'.",
            metavar="auto|ADDRESS",
        ),
    ] = None,
    ray_gpus: Annotated[
        float | None,
        typer.Option(
            "--ray-gpus",
            min=0,
            help="GPUs per Ray task (default 1 if the cluster has GPUs).",
            metavar="FLOAT",
        ),
    ] = None,
    ray_cpus: Annotated[
        float, typer.Option("--ray-cpus", min=0, help="CPUs per Ray task.", metavar="FLOAT")
    ] = 1.0,
    ray_retries: Annotated[
        int,
        typer.Option(
            "--ray-retries", min=0, help="Reruns of a task whose worker died.", metavar="INT"
        ),
    ] = 3,
    split_frames: Annotated[
        int,
        typer.Option(
            "--split-frames",
            min=2,
            help="On Ray, split longer videos into tasks of ~N frames.",
            metavar="INT",
        ),
    ] = 600,
    scratch: Annotated[
        Path | None,
        typer.Option(
            "--scratch",
            help="Folder for split tasks' frames (default OUTPUT/.lama-video-scratch).",
            metavar="PATH",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Also write the report as JSON here.", metavar="PATH"),
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Search the source's sub-folders too.")
    ] = False,
    content_hash: Annotated[
        bool,
        typer.Option("--hash", help="Recognise finished inputs by SHA-256, not size and mtime."),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace outputs this batch did not write.")
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
    trust_checkpoint: TrustOpt = False,
) -> None:
    """Clean every recording of SOURCE into OUTPUT; a rerun skips finished jobs.

    Exit status: 0 all jobs done or skipped, 1 a job failed, 130 interrupted (rerun to continue).
    """

    def job() -> None:
        from tqdm import tqdm

        from lama_video.batching import BatchInterrupted, BatchReport, Job, JobResult
        from lama_video.batching import batch as run_batch

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
            audio=audio,
        )
        bars: list[tqdm] = []

        def on_start(jobs: list[Job]) -> None:
            bars.append(
                tqdm(
                    total=len(jobs),
                    unit="job",
                    desc="batch",
                    disable=state.quiet,
                    dynamic_ncols=True,
                )
            )

        def on_job(result: JobResult) -> None:
            if result.status == "failed":
                tqdm.write(f"failed: {result.name}: {result.error}", file=sys.stderr)
            bars[0].update(1)

        def finish(rep: BatchReport) -> None:
            for bar in bars:
                bar.close()
            if report is not None:
                report.write_text(json.dumps(rep.to_dict(), indent=1), encoding="utf-8")
            if not state.quiet:
                typer.echo(rep.table())

        try:
            rep = run_batch(
                source,
                output,
                config=cfg,
                workers=workers,
                ray_address=ray,
                ray_gpus=ray_gpus,
                ray_cpus=ray_cpus,
                ray_retries=ray_retries,
                split_frames=split_frames,
                scratch_dir=scratch,
                recursive=recursive,
                overwrite=overwrite,
                content_hash=content_hash,
                on_start=on_start,
                on_job=on_job,
            )
        except BatchInterrupted as err:
            finish(err.report)
            done = err.report.count("done") + err.report.count("skipped")
            typer.echo(
                f"interrupted: {done} of {len(err.report.results)} jobs are finished and recorded "
                f"in {output / 'batch-manifest.json'}; rerun the same command to continue",
                err=True,
            )
            raise typer.Exit(130) from None
        finally:
            for bar in bars:
                bar.close()
        finish(rep)
        failed = rep.count("failed")
        if failed:
            typer.echo(
                f"error: {failed} of {len(rep.results)} jobs failed (errors in the table and the "
                "manifest); fix them and rerun to retry only those",
                err=True,
            )
            raise typer.Exit(1)

    run_command(job)
