"""The object-removal pipeline: decode -> masks -> dilate -> engine -> composite -> encode.

Every stage is a generator, so memory is bounded by the engine's window, never by the video's
length. This module imports no media or UI library; it chains the leaf services.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from lama_video import masks as masks_mod
from lama_video.composite import composite
from lama_video.config import RunConfig
from lama_video.engines import ImageEngine, make_image_engine
from lama_video.errors import EncodeError, MaskError
from lama_video.masks import Box, MaskTrack
from lama_video.video import Frame, VideoWriter, count_frames, open_video

log = logging.getLogger(__name__)

Item = tuple[Frame, NDArray[np.bool_]]
Result = tuple[Frame, NDArray[np.bool_], NDArray[np.uint8]]


class PerFrameEngine:
    """The baseline video engine: each frame inpainted alone by an image engine, in batches.

    Same interface as :class:`lama_video.temporal.TemporalEngine`.
    """

    def __init__(self, image_engine: ImageEngine, batch_size: int = 8) -> None:
        self.image_engine = image_engine
        self.batch_size = batch_size
        self.name = f"per-frame {image_engine.name}"

    def _flush(self, batch: list[Item]) -> Iterator[Result]:
        todo = [i for i, (_, hole) in enumerate(batch) if hole.any()]
        filled: dict[int, NDArray[np.uint8]] = {}
        if todo:
            frames = np.stack([batch[i][0].rgb for i in todo])
            holes = np.stack([batch[i][1] for i in todo])
            out = self.image_engine.inpaint(frames, holes)
            filled = {i: out[k] for k, i in enumerate(todo)}
        for i, (frame, hole) in enumerate(batch):
            yield frame, hole, filled.get(i, frame.rgb)

    def process(
        self, items: Iterable[Item], progress: Callable[[int], None] | None = None
    ) -> Iterator[Result]:
        """Yield ``(frame, hole, filled_rgb)`` for each ``(frame, hole)`` in order."""
        batch: list[Item] = []
        for item in items:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield from self._flush(batch)
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            yield from self._flush(batch)
            if progress:
                progress(len(batch))


def build_image_engine(cfg: RunConfig) -> ImageEngine:
    """The image engine ``cfg.inpaint.engine`` names (``auto``: LaMa when weights are found)."""
    return make_image_engine(cfg.inpaint)


def build_video_engine(cfg: RunConfig, image_engine: ImageEngine | None = None):  # type: ignore[no-untyped-def]
    """The temporal engine (default) or the per-frame baseline (``temporal.enabled: false``)."""
    image_engine = image_engine or build_image_engine(cfg)
    if cfg.temporal.enabled:
        from lama_video.temporal import TemporalEngine

        return TemporalEngine(image_engine, cfg.temporal)
    return PerFrameEngine(image_engine, cfg.inpaint.batch_size)


@dataclass(frozen=True)
class RemoveResult:
    """What :func:`remove_object` did."""

    output: Path
    frames: int
    engine: str
    seconds: float


def check_paths(input_path: Path, output_path: Path, *, overwrite: bool) -> None:
    """Refuse an output that is the input or already exists (before any work starts).

    Raises:
        EncodeError: the output equals the input, or exists and ``overwrite`` is False.
    """
    same = output_path.resolve() == input_path.resolve()
    if not same and output_path.exists():
        try:
            same = os.path.samefile(output_path, input_path)
        except OSError:
            same = False
    if same:
        raise EncodeError(
            f"output {str(output_path)!r} is the input; expected a different output path "
            "(the input is never modified)"
        )
    if output_path.exists() and not overwrite:
        raise EncodeError(
            f"output {str(output_path)!r} already exists; pass --overwrite to replace it or choose "
            "another path"
        )


def open_mask_track(
    source: str | os.PathLike[str] | Box | None,
    *,
    width: int,
    height: int,
    n_frames: int | None,
    cfg: RunConfig,
) -> MaskTrack:
    """Open the per-frame mask source (validated against the video now)."""
    if source is None:
        raise MaskError(
            "no mask given; pass --mask PATH, --box X,Y,W,H or --keyframe-mask FRAME:PATH"
        )
    src = source if isinstance(source, Box) else Path(source)
    return masks_mod.load_masks(src, width=width, height=height, n_frames=n_frames, cfg=cfg.masks)


def remove_object(
    input: str | os.PathLike[str],
    mask: str | os.PathLike[str] | Box | None = None,
    output: str | os.PathLike[str] | None = None,
    *,
    config: RunConfig | None = None,
    keyframe_masks: dict[int, str | os.PathLike[str]] | None = None,
    overwrite: bool = False,
    image_engine: ImageEngine | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
) -> RemoveResult:
    """Remove the masked object from a video (or image sequence) and write the result.

    Args:
        input: a video file or a folder of frames.
        mask: a mask folder, mask video, single mask image or :class:`Box` (per-frame masks).
        output: a video file, or a folder for a PNG sequence.
        config: run settings (defaults: ``RunConfig()``).
        keyframe_masks: ``{frame index: mask image}`` tracked through the clip instead of ``mask``.
        overwrite: replace an existing output.
        image_engine: use this engine instead of building one from ``config.inpaint``.
        progress: called with the number of frames just written.
        on_start: called once with the frame count (None if unknown) before processing starts.

    Raises:
        LamaVideoError: bad input; nothing is written under ``output`` in that case.
    """
    if output is None:
        raise EncodeError("no output given; pass -o/--output PATH")
    cfg = config or RunConfig()
    in_path, out_path = Path(input), Path(output)
    check_paths(in_path, out_path, overwrite=overwrite)
    t0 = time.perf_counter()
    with open_video(in_path, decode=cfg.decode) as reader:
        info = reader.info
        n_frames = info.n_frames if info.is_image_sequence else count_frames(in_path)
        if keyframe_masks:
            if mask is not None:
                raise MaskError("give either --mask or --keyframe-mask, not both")
            from lama_video.propagate import propagate_keyframes

            masks_iter: Iterator[NDArray[np.bool_]] = propagate_keyframes(
                reader, keyframe_masks, cfg=cfg
            )
            mask_count: int | None = n_frames
        else:
            track = open_mask_track(
                mask, width=info.width, height=info.height, n_frames=n_frames, cfg=cfg
            )
            masks_iter = track.masks()
            mask_count = track.count
        engine = build_video_engine(cfg, image_engine)
        log.info("engine: %s", engine.name)
        if on_start:
            on_start(n_frames)
        cores: dict[int, NDArray[np.bool_]] = {}
        seen = 0

        def items() -> Iterator[Item]:
            nonlocal seen
            for frame in reader.frames():
                core = next(masks_iter, None)
                if core is None:
                    raise MaskError(
                        f"the masks ran out at frame {frame.index} but the video has more frames; "
                        "expected one mask per frame"
                    )
                seen += 1
                cores[frame.index] = core
                yield frame, masks_mod.dilate(core, cfg.masks.dilate_px)

        written = 0
        with VideoWriter(
            out_path, info, encode=cfg.encode, source=in_path, overwrite=overwrite
        ) as writer:
            for frame, hole, filled in engine.process(items()):
                core = cores.pop(frame.index)
                rgb = composite(frame.rgb, filled, hole, core, cfg.masks.feather_px)
                writer.write(replace(frame, rgb=rgb))
                written += 1
                if progress:
                    progress(1)
            if mask_count is not None and seen < mask_count:
                raise MaskError(
                    f"{mask_count} masks were given but the video has {seen} frames; "
                    "expected one mask per frame"
                )
    return RemoveResult(
        output=out_path, frames=written, engine=engine.name, seconds=time.perf_counter() - t0
    )
