"""``lama-video mask``: track keyframe masks through a clip; write the holes ``remove`` would use.

The PNGs it writes (``00000.png`` ...: 8-bit grey, 0 or 255) are exactly the holes of ``remove``
with the same keyframes and settings (propagation, then ``--dilate``), so a user can check the
tracking (``--preview`` overlays them on the video) before spending time on removal, add a keyframe
where it slipped, or pass the folder to ``remove --mask`` with ``--dilate 0`` (they are grown
already; the command says so when it is done).
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lama_video.cli._app import app, run_command, state
from lama_video.cli.remove import (
    ConfigOpt,
    DilateOpt,
    OverwriteOpt,
    build_config,
    parse_keyframe,
)
from lama_video.fsutil import publish
from lama_video.outputs import (
    check_output,
    mark_folder,
    partial_prefix,
    remove_stale_partials,
)

if TYPE_CHECKING:  # NumPy, OpenCV and PyAV load when a command runs, not for --help
    import numpy as np
    from numpy.typing import NDArray

    from lama_video.overlay import Detection

#: Overlay colour of the holes in the preview (RGB) and its opacity inside the hole.
PREVIEW_RGB = (255, 0, 255)
PREVIEW_ALPHA = 0.5


def overlay(rgb: NDArray[np.uint8], hole: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """The frame with the hole tinted in :data:`PREVIEW_RGB` and its outline drawn solid.

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        hole: (H, W) bool, True = hole.

    Returns:
        (H, W, 3) uint8 RGB; pixels outside the hole and its 1 px outer outline are unchanged.
    """
    import numpy as np

    from lama_video.masks import dilate

    out = rgb.copy()
    colour = np.array(PREVIEW_RGB, np.float32)
    inside = out[hole].astype(np.float32)
    out[hole] = np.round((1 - PREVIEW_ALPHA) * inside + PREVIEW_ALPHA * colour).astype(np.uint8)
    out[dilate(hole, 1) & ~hole] = PREVIEW_RGB
    return out


def mask_names(reader: object) -> list[str]:
    """File names of the masks: a folder of frames gives its frames' names (``.png``), so each mask
    pairs with its frame; a video (or frames whose names would collide) gives 00000.png, ...

    Returns:
        The names for the first frames (empty: number them all).
    """
    files = getattr(reader, "files", None)
    if not files:
        return []
    names = [f"{Path(f).stem}.png" for f in files]
    return names if len(set(names)) == len(names) else []


def _publish_folder(tmp: Path, output: Path, inputs: tuple[Path, ...], *, overwrite: bool) -> None:
    """Mark ``tmp`` as this tool's and rename it to ``output``, replacing an earlier one."""
    mark_folder(tmp)
    # Checked again at the last moment: only an empty folder or one this tool wrote.
    check_output(output, inputs=inputs, kind="folder", overwrite=overwrite)
    if output.is_dir() and not output.is_symlink():
        shutil.rmtree(output)
    publish(tmp, output)


@dataclasses.dataclass(frozen=True)
class Tracked:
    """What :func:`write_masks` wrote and how much the tracker vouches for each frame."""

    count: int
    keyframes: tuple[int, ...]
    confidence: tuple[float, ...]
    suggestions: tuple[int, ...]

    def hint(self) -> str:
        """One line for the user: where tracking is weakest and where to add a keyframe."""
        if not self.suggestions:
            if len(self.keyframes) == self.count:
                return "every frame is a keyframe"
            return "no frame to suggest a keyframe for: the tracking is sure of every frame"
        first = self.suggestions[0]
        low = self.confidence[first]
        more = ", ".join(str(t) for t in self.suggestions[1:])
        return (
            f"tracking is least sure at frame {first} (confidence {low:.2f}); "
            f"add a keyframe near frame {first}" + (f" (then {more})" if more else "")
        )

    def report(self) -> dict[str, object]:
        """The JSON of ``--report``."""
        keys = set(self.keyframes)
        return {
            "frames": [
                {"index": i, "keyframe": i in keys, "confidence": c}
                for i, c in enumerate(self.confidence)
            ],
            "keyframes": list(self.keyframes),
            "suggested_keyframes": list(self.suggestions),
            "hint": self.hint(),
        }


def write_masks(
    input: Path,
    keyframes: dict[int, Path],
    output: Path,
    *,
    preview: Path | None,
    config: Path | None,
    dilate: int | None,
    overwrite: bool,
    report: Path | None = None,
) -> Tracked:
    """Propagate, dilate and write one PNG per frame into ``output`` (atomically).

    With ``report``, also write the per-frame tracking confidence and the suggested keyframes
    there as JSON.

    Raises:
        LamaVideoError: bad input or keyframes (MaskError), an existing output (EncodeError).
    """
    import json

    from tqdm import tqdm

    from lama_video.fsutil import write_atomic
    from lama_video.propagate import (
        PackedMasks,
        holes,
        tracking_steps,
        tracking_summary,
        write_mask_png,
    )
    from lama_video.video import VideoWriter, count_frames, for_review, open_video

    cfg = build_config(config, masks={"dilate_px": dilate})
    inputs = (input, *keyframes.values())
    check_output(output, inputs=inputs, kind="folder", overwrite=overwrite)
    if preview is not None:
        check_output(
            preview, inputs=(*inputs, output), kind="file", overwrite=overwrite, what="preview"
        )
    if report is not None:
        check_output(
            report,
            inputs=(*inputs, output, *((preview,) if preview else ())),
            kind="file",
            overwrite=overwrite,
            what="report",
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with open_video(input, decode=cfg.decode) as reader:
        info = reader.info
        n = info.n_frames if info.is_image_sequence else count_frames(input)
        # Forward pass over every frame, backward pass up to the last keyframe, then writing.
        total = (tracking_steps(n, keyframes) + n) if n else None
        remove_stale_partials(output)
        tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(output), dir=output.parent))
        writer = None
        try:
            with tqdm(
                total=total, unit="frame", desc="mask", disable=state.quiet, dynamic_ncols=True
            ) as bar:
                tracked: list[PackedMasks] = []
                masks = holes(
                    reader,
                    keyframes,
                    cfg,
                    progress=bar.update,
                    n_frames=n,
                    on_tracked=tracked.append,
                )
                if preview is not None:
                    encode = dataclasses.replace(for_review(cfg.encode), audio="none")
                    writer = VideoWriter(preview, info, encode=encode, overwrite=overwrite)
                count = 0
                frames = reader.frames() if writer is not None else None
                names = mask_names(reader)
                for hole in masks:
                    name = names[count] if count < len(names) else f"{count:05d}.png"
                    write_mask_png(tmp / name, hole)
                    if writer is not None and frames is not None:
                        frame = next(frames)
                        writer.write(
                            dataclasses.replace(frame, rgb=overlay(frame.rgb, hole), deep=None)
                        )
                    count += 1
                    bar.update(1)
            if writer is not None:
                writer.close()
                writer = None
            summary = tracking_summary(tracked[0], keyframes)
            result = Tracked(
                count=count,
                keyframes=tuple(sorted(keyframes)),
                confidence=tuple(summary["confidence"]),
                suggestions=tuple(summary["suggested_keyframes"]),
            )
            _publish_folder(tmp, output, inputs, overwrite=overwrite)
            if report is not None:  # after the masks: a report never describes masks not there
                data = json.dumps({"input": str(input), **result.report()}, indent=1)
                write_atomic(report, data.encode("utf-8"))
        finally:
            if writer is not None:
                writer.abort()
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def write_overlay_masks(
    input: Path,
    output: Path,
    *,
    preview: Path | None,
    config: Path | None,
    overwrite: bool,
) -> tuple[Detection, int | None]:
    """Find static overlays; write ``overlay.png`` (0/255) and ``opacity.png`` into ``output``.

    Nothing is written when nothing is found.

    Returns:
        What :func:`lama_video.pipeline.find_overlays` found, and the clip's frame count.
    """
    import cv2
    import numpy as np
    from tqdm import tqdm

    from lama_video.pipeline import find_overlays
    from lama_video.propagate import write_mask_png
    from lama_video.video import VideoWriter, for_review, open_video

    cfg = build_config(config)
    check_output(output, inputs=(input,), kind="folder", overwrite=overwrite)
    if preview is not None:
        check_output(
            preview, inputs=(input, output), kind="file", overwrite=overwrite, what="preview"
        )
    found, n = find_overlays(input, cfg)
    if not found.found:
        return found, n
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(output)
    tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(output), dir=output.parent))
    writer = None
    try:
        write_mask_png(tmp / "overlay.png", found.mask)
        ok, buf = cv2.imencode(".png", np.rint(found.opacity * 255).astype(np.uint8))
        if not ok:  # pragma: no cover - cv2 encodes any uint8 image
            raise OSError("cannot encode the opacity PNG")
        (tmp / "opacity.png").write_bytes(buf.tobytes())
        if preview is not None:
            with open_video(input, decode=cfg.decode) as reader:
                encode = dataclasses.replace(for_review(cfg.encode), audio="none")
                writer = VideoWriter(preview, reader.info, encode=encode, overwrite=overwrite)
                with tqdm(
                    total=n, unit="frame", desc="preview", disable=state.quiet, dynamic_ncols=True
                ) as bar:
                    for frame in reader.frames():
                        rgb = overlay(frame.rgb, found.mask)
                        writer.write(dataclasses.replace(frame, rgb=rgb, deep=None))
                        bar.update(1)
                writer.close()
                writer = None
        _publish_folder(tmp, output, (input,), overwrite=overwrite)
    finally:
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
    return found, n


@app.command()
def mask(
    input: Annotated[
        Path, typer.Argument(help="Input video file or folder of frames.", metavar="INPUT")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the masks: named like the input's frames for a folder of frames, "
            "00000.png ... for a video.",
            metavar="PATH",
        ),
    ],
    keyframe_mask: Annotated[
        list[str] | None,
        typer.Option(
            "--keyframe-mask",
            help="FRAME:PATH, repeatable: masks to track (an empty mask: the object is absent "
            "there, and the tracks stop at it).",
            metavar="FRAME:PATH",
        ),
    ] = None,
    mask_folder: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            "-m",
            help="With --keyframes: a folder of masks for some frames.",
            metavar="PATH",
        ),
    ] = None,
    keyframes: Annotated[
        bool,
        typer.Option("--keyframes", help="The --mask folder holds masks for some frames only."),
    ] = False,
    preview: Annotated[
        Path | None,
        typer.Option(
            "--preview",
            help="Also write a video with the holes overlaid in colour.",
            metavar="PATH",
        ),
    ] = None,
    detect_overlays: Annotated[
        bool,
        typer.Option(
            "--detect-overlays",
            help="Find static logos, watermarks and burnt-in text instead: write overlay.png "
            "(the mask, for remove --overlay) and opacity.png into the output folder.",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a JSON report: per frame, how sure the tracking is, and the frames "
            "where a new keyframe would help most.",
            metavar="PATH",
        ),
    ] = None,
    config: ConfigOpt = None,
    dilate: DilateOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Track keyframe masks through INPUT and write every frame's hole as a PNG (0/255).

    The holes are grown already (by --dilate): remove with them as `lama-video remove INPUT
    --mask OUTPUT --dilate 0 -o OUT`, which the command prints when it is done.
    """
    if detect_overlays:
        if keyframe_mask or mask_folder is not None:
            raise typer.BadParameter(
                "--detect-overlays finds the overlays itself; expected no --keyframe-mask/--mask"
            )
        if report is not None:
            raise typer.BadParameter(
                "--report describes tracking; expected no --report with --detect-overlays"
            )

        def detect_job() -> None:
            found, n = write_overlay_masks(
                input, output, preview=preview, config=config, overwrite=overwrite
            )
            regions = found.regions
            if not regions:
                typer.echo(
                    f"no static overlay found ({found.frames} of {n} frames sampled); "
                    "nothing written",
                    err=True,
                )
                return
            if not state.quiet:
                for k, r in enumerate(regions, 1):
                    typer.echo(
                        f"overlay {k}: box {r.x},{r.y},{r.width},{r.height} ({r.pixels} px), "
                        f"opacity about {100 * r.opacity:.0f}%",
                        err=True,
                    )
                typer.echo(
                    f"wrote {output / 'overlay.png'} and {output / 'opacity.png'}"
                    + (f" and preview {preview}" if preview is not None else ""),
                    err=True,
                )

        run_command(detect_job)
        return
    if bool(keyframe_mask) == (mask_folder is not None):
        raise typer.BadParameter(
            "expected exactly one of --keyframe-mask FRAME:PATH or --mask FOLDER --keyframes"
        )
    if mask_folder is not None and not keyframes:
        raise typer.BadParameter("--mask needs --keyframes here (the folder holds keyframe masks)")

    def job() -> None:
        if keyframe_mask:
            kf = dict(parse_keyframe(t) for t in keyframe_mask)
        else:
            assert mask_folder is not None
            from lama_video.masks import keyframes_from_folder

            kf = keyframes_from_folder(mask_folder)
        tracked = write_masks(
            input,
            kf,
            output,
            preview=preview,
            config=config,
            dilate=dilate,
            overwrite=overwrite,
            report=report,
        )
        if not state.quiet:
            extra = f" and preview {preview}" if preview is not None else ""
            extra += f" and report {report}" if report is not None else ""
            typer.echo(f"wrote {tracked.count} masks to {output}{extra}", err=True)
            typer.echo(tracked.hint(), err=True)
            # The PNGs are the holes themselves, grown already: remove must not grow them again.
            src, dst = shlex.quote(str(input)), shlex.quote(str(output))
            typer.echo(
                f"remove with them: lama-video remove {src} --mask {dst} --dilate 0 -o OUT",
                err=True,
            )

    run_command(job)
