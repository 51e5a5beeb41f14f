"""Run configuration: frozen dataclasses are the one source of defaults.

``configs/default.yaml`` mirrors :class:`RunConfig` exactly (a test keeps them equal). Precedence is
``RunConfig()`` defaults < ``--config`` YAML < explicit CLI flags. Unknown keys and out-of-range
values raise :class:`~lama_video.errors.ConfigError` naming the key, the value and what is allowed.

Every field declares its constraint in ``metadata``: ``choices`` (closed set) or ``min``/``max``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lama_video.errors import ConfigError


def _f(
    default: Any,
    *,
    choices: tuple[Any, ...] | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> Any:
    """A dataclass field with its validation rule attached."""
    return field(default=default, metadata={"choices": choices, "min": lo, "max": hi})


# Longest side of the frames the browser page shows (``lama-video ui --proxy-side``).
UI_PROXY_MAX_SIDE_PX = 960

# Closed sets of choices (the CLI lists and validates them from here).
ENGINES = ("auto", "lama", "exemplar", "telea", "ns")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
AUDIO_MODES = ("copy", "aac", "none")
SUBTITLE_MODES = ("copy", "none")


@dataclass(frozen=True)
class DecodeConfig:
    """How input video is decoded."""

    # decoder threads; 0 = let FFmpeg choose (frame + slice threading)
    threads: int = _f(0, lo=0, hi=256)
    # corrupt frames skipped before the input is declared broken
    max_corrupt_frames: int = _f(16, lo=0)


@dataclass(frozen=True)
class MaskConfig:
    """How masks are read and shaped."""

    # value > threshold is a hole; -1 = auto (0 for lossless, 127 lossy)
    threshold: int = _f(-1, lo=-1, hi=254)
    # grow holes by this radius so object edges and halos go too
    dilate_px: int = _f(4, lo=0, hi=256)
    # seam blend width, inside the dilation ring only (0 = hard seam)
    feather_px: int = _f(2, lo=0, hi=64)


@dataclass(frozen=True)
class PropagationConfig:
    """Keyframe mask propagation (``--keyframe-mask``) with optical flow."""

    # OpenCV DIS preset
    flow_preset: str = _f("medium", choices=("ultrafast", "fast", "medium"))
    # flow computed at this longest side at most, then scaled up
    flow_max_side_px: int = _f(640, lo=32)
    # extra growth of propagated masks (a ghost is worse than a hole)
    safety_px: int = _f(4, lo=0, hi=64)
    # re-fit tracked outlines to each frame's colours (GrabCut); False = flow only, faster
    colour_refine: bool = _f(True)
    # growth (px) per frame the colour re-fit may add to a mask (or 12% of a big object's box side)
    refine_band_px: int = _f(15, lo=1, hi=256)


@dataclass(frozen=True)
class InpaintConfig:
    """The image engine that hallucinates pixels seen in no frame."""

    # auto = lama if weights found, else exemplar
    engine: str = _f("auto", choices=ENGINES)
    # weights: a registry name (looked up in the cache) or a path
    model: str = _f("big-lama")
    # allow a checkpoint to run code: full unpickling, TorchScript (trusted files only)
    trust_checkpoint: bool = _f(False)
    # auto|cpu|cuda|cuda:N|mps
    device: str = _f("auto")
    # auto = bf16 on GPUs and CPUs with native bf16, else fp32; FFTs always run in fp32
    precision: str = _f("auto", choices=PRECISIONS)
    # crops per forward pass (halved on CUDA out-of-memory)
    batch_size: int = _f(8, lo=1, hi=1024)
    # frames whose longest side exceeds this are cropped around holes
    crop_trigger_px: int = _f(800, lo=64)
    # context kept around each hole's bounding box
    crop_margin_px: int = _f(128, lo=0)
    # crops with a longer side are downscaled to this for the model
    resize_limit_px: int = _f(1280, lo=64)
    # neighbourhood radius of OpenCV Telea / Navier-Stokes
    classical_radius_px: int = _f(5, lo=1, hi=64)


@dataclass(frozen=True)
class TemporalConfig:
    """The temporal engine: flow-guided propagation, keyframe hallucination, smoothing, windows."""

    # False = each frame inpainted alone (the per-frame baseline)
    enabled: bool = _f(True)
    # frames processed together (bounds memory; the last window may also take in the clip's last
    # few frames, up to a quarter of a window within window_max_mb)
    window_frames: int = _f(60, lo=2, hi=2000)
    # frames shared by consecutive windows, cross-faded
    overlap_frames: int = _f(10, lo=0, hi=1000)
    # a window's frames hold at most this many MB of RGB: large frames get shorter windows (the
    # overlap shrinks with them); 0 = window_frames at every size
    window_max_mb: int = _f(128, lo=0)
    # OpenCV DIS preset
    flow_preset: str = _f("medium", choices=("ultrafast", "fast", "medium"))
    # flow (and all propagation geometry) at this longest side at most; colours stay full-size
    flow_max_side_px: int = _f(480, lo=32)
    # the union of two frames' holes is grown by this (px of the flow grid, see flow_max_side_px)
    # before flow completion, so the object's motion does not leak in
    flow_grow_px: int = _f(8, lo=0, hi=128)
    # how the flow inside the grown holes is filled: the camera motion (homography) fitted around
    # each hole, falling back to harmonic where no single motion fits; or always harmonic
    flow_fill: str = _f("homography", choices=("homography", "harmonic"))
    # farthest neighbour a hole pixel may copy from
    max_propagation_frames: int = _f(30, lo=0)
    # forward-backward flow error above which a source is unreliable
    consistency_px: float = _f(1.5, lo=0.0)
    # frames between hallucinated keyframes
    keyframe_interval: int = _f(5, lo=1)
    # 0 = off, 1 = full blend with aligned neighbours
    smoothing_strength: float = _f(1.0, lo=0.0, hi=1.0)
    # neighbours on each side used by smoothing
    smoothing_radius: int = _f(4, lo=0, hi=10)
    # share of the fine detail (finer than a 2-px Gaussian) that smoothing averages too; the coarser
    # part is always averaged. 1 = all of it (a blur where neighbours are not aligned to the pixel)
    smoothing_detail: float = _f(0.15, lo=0.0, hi=1.0)
    # the motion smoothing follows inside the holes: the filled frames' own flow (DIS on the
    # window's fills), or the completed flow that propagation used
    smoothing_flow: str = _f("filled", choices=("filled", "completed"))
    # ring mismatch (grey levels) where propagated colours weigh half vs a smooth fill; 0 = off
    mismatch_scale: float = _f(16.0, lo=0.0)
    # share of a mismatching copy's fine detail kept on the smooth fill it yields to (its doubtful
    # detail is then averaged over time in full); 0 = the smooth fill alone (a smear)
    fallback_detail: float = _f(0.5, lo=0.0, hi=1.0)


# Output pixel formats the writer supports (8- and 10-bit YUV, planar RGB for lossless work).
PIX_FMTS = (
    "auto",
    "yuv420p",
    "yuv422p",
    "yuv444p",
    "nv12",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "gbrp",
    "rgb24",
)


@dataclass(frozen=True)
class EncodeConfig:
    """How the output is encoded."""

    # any FFmpeg video encoder (libx264, libx265, libvpx-vp9, ...); auto = libx264, or libx265
    # for a 10-bit source (with pix_fmt auto), or one the output container holds (.webm: VP9)
    codec: str = _f("auto")
    # constant rate factor (lower = better); 18 is visually lossless
    crf: int = _f(18, lo=0, hi=63)
    # encoder speed/size trade-off (x264/x265 names)
    preset: str = _f("medium")
    # output pixel format; auto = yuv420p, or yuv420p10le for a 10-bit (HDR) source (odd frame
    # sizes turn the 4:2:0/4:2:2 ones into their 4:4:4 twin)
    pix_fmt: str = _f("auto", choices=PIX_FMTS)
    # copy = packet-for-packet stream copy
    audio: str = _f("copy", choices=AUDIO_MODES)
    # copy = stream copy (text subtitles the container cannot hold converted to one it can)
    subtitles: str = _f("copy", choices=SUBTITLE_MODES)
    # x264: the same input and settings give the same bytes on every run (frame threads, no
    # macroblock-tree rate control); False = x264's macroblock tree (~0.3 dB better, not repeatable)
    reproducible: bool = _f(True)


@dataclass(frozen=True)
class OverlayConfig:
    """Static overlays (``--overlay``): logos, watermarks, burnt-in text."""

    # above this estimated opacity the overlay is filled, not un-blended (fades out over 0.1 below)
    max_unblend_opacity: float = _f(0.9, lo=0.1, hi=0.99)
    # noise of the frames (grey levels) that un-blending amplifies by 1 / (1 - opacity)
    noise_levels: float = _f(1.0, lo=0.0, hi=50.0)
    # frames seen after a frame before it is un-blended (they wait; not when fitted opaque)
    fit_frames: int = _f(24, lo=2, hi=1000)
    # frames sampled (evenly over the clip) to find overlays with --overlay auto
    detect_samples: int = _f(48, lo=3, hi=1000)
    # larger frames are searched for overlays at this longest side (bounds memory and time)
    detect_max_side_px: int = _f(1280, lo=64)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run of :func:`lama_video.remove_object` can be told."""

    decode: DecodeConfig = field(default_factory=DecodeConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    propagation: PropagationConfig = field(default_factory=PropagationConfig)
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> RunConfig:
        """Load a YAML preset on top of the defaults."""
        return load_config(path)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Nested plain dict (what ``configs/default.yaml`` holds)."""
        return dataclasses.asdict(self)

    def replace(self, overrides: dict[str, dict[str, Any]]) -> RunConfig:
        """A copy with ``{section: {key: value}}`` applied and validated."""
        return _merge(self, overrides, source="overrides")


def _resolve_type(owner: type, name: str) -> Any:
    hints = typing.get_type_hints(owner)
    return hints[name]


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotated type (with int -> float widening)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in typing.get_args(tp):
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, arm, where)
            except ConfigError as err:
                errors.append(err)
        raise errors[0] if errors else ConfigError(f"{where}: unexpected null")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(
                    f"{where}: got {value!r}, expected a finite number; fix the value in your "
                    "config file or flag"
                )
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types above are used
        return value
    raise ConfigError(
        f"{where}: got {value!r} ({type(value).__name__}), expected a value of type "
        f"{getattr(tp, '__name__', tp)}; fix the value in your config file or flag"
    )


def _check_field(f: dataclasses.Field[Any], value: Any, where: str) -> None:
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: got {value!r}, expected one of {', '.join(map(str, choices))}")
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise ConfigError(f"{where}: got {value!r}, expected a value in {rng}")


def _unknown_key(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"unknown config key {where}{key!r}; {hint}valid keys: {', '.join(valid)}")


def _merge(base: RunConfig, data: Any, *, source: str) -> RunConfig:
    if data is None:
        return base
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    sections = {f.name: f for f in dataclasses.fields(RunConfig)}
    new_sections: dict[str, Any] = {}
    for sec_name, sec_data in data.items():
        if sec_name not in sections:
            raise _unknown_key(str(sec_name), list(sections), f"in {source}: ")
        current = getattr(base, sec_name)
        if sec_data is None:
            continue
        if not isinstance(sec_data, dict):
            raise ConfigError(
                f"{source}: section {sec_name!r} must be a mapping, got {type(sec_data).__name__}"
            )
        sec_cls = type(current)
        fields = {f.name: f for f in dataclasses.fields(sec_cls)}
        changes: dict[str, Any] = {}
        for key, value in sec_data.items():
            if key not in fields:
                raise _unknown_key(str(key), list(fields), f"in {source}: {sec_name}.")
            where = f"{source}: {sec_name}.{key}"
            value = _coerce(value, _resolve_type(sec_cls, key), where)
            _check_field(fields[key], value, where)
            changes[key] = value
        new_sections[sec_name] = dataclasses.replace(current, **changes)
    cfg = dataclasses.replace(base, **new_sections)
    _check_cross_field(cfg, source)
    return cfg


def _check_cross_field(cfg: RunConfig, source: str) -> None:
    t = cfg.temporal
    if t.overlap_frames >= t.window_frames:
        raise ConfigError(
            f"{source}: temporal.overlap_frames ({t.overlap_frames}) must be smaller than "
            f"temporal.window_frames ({t.window_frames})"
        )
    dev = cfg.inpaint.device
    if not (
        dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())
    ):
        raise ConfigError(
            f"{source}: inpaint.device: got {dev!r}, expected auto, cpu, cuda, cuda:N or mps"
        )


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> RunConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides`` (``None`` skipped).

    Raises:
        ConfigError: the file is missing or not YAML, a key is unknown, or a value is invalid.
    """
    cfg = RunConfig()
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(
                f"cannot read config file {str(p)!r} ({err.strerror}); pass an existing YAML file "
                "to --config"
            ) from err
        except UnicodeDecodeError as err:
            raise ConfigError(
                f"config file {str(p)!r} is not UTF-8 text (byte {err.start}); expected a YAML "
                "file: save it as UTF-8"
            ) from err
        import yaml  # late: only a YAML file needs it (``--help`` does not)

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {str(p)!r} is not valid YAML: {err}") from err
        cfg = _merge(cfg, data, source=str(p))
    if overrides:
        pruned = {
            sec: {k: v for k, v in vals.items() if v is not None} for sec, vals in overrides.items()
        }
        cfg = _merge(cfg, {s: v for s, v in pruned.items() if v}, source="command line")
    return cfg


def dump_default_yaml() -> str:
    """The defaults as YAML (used to check ``configs/default.yaml``)."""
    import yaml

    return yaml.safe_dump(RunConfig().to_dict(), sort_keys=False)
