"""LaMa's training and evaluation hole generators: random brush strokes, boxes and their mixture.

Behaviour follows ``saicinpainting/training/data/masks.py`` (LaMa, commit 786f593) without its
global ``np.random`` state: every draw comes from one :class:`numpy.random.Generator`, so a seed
reproduces a mask sequence exactly and two generators never interfere.

* Strokes (``make_random_irregular_mask``, ``DrawMethod.LINE``): ``1 + randint(5)`` connected
  segments per stroke, each of length ``10 + randint(max_len)`` px, brush width
  ``5 + randint(max_width)`` px, direction ``0.01 + randint(max_angle)`` radians (mirrored to
  ``2π - angle`` on even strokes), drawn with ``cv2.line``. LaMa's ``RandomIrregularMaskGenerator``
  without a ramp draws ``randint(min_times, max_times + 2)`` strokes, i.e. up to ``max_times + 1``;
  that off-by-one is kept so the presets give the released area distributions.
* Boxes (``make_random_rectangle_mask``): ``randint(min_times, max_times + 1)`` axis-aligned boxes
  with sides in ``[bbox_min_size, bbox_max_size]`` (capped by the canvas minus the margins), at
  least ``margin`` px from the border.
* Mixture (``MixedMaskGenerator``): one generator per mask, picked with the normalised
  probabilities.

The evaluation presets (``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``) also
reject masks covering more than half of the image (``max_tamper_area: 0.5``); here the rejected
mask is simply redrawn on the same square canvas (LaMa drew it on the resized photo and then
cropped a square; the crop step is not reproduced).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from lama_video.errors import ConfigError

_MAX_REDRAWS = 100  # attempts at a mask within the area limits before giving the smallest one


@dataclass(frozen=True)
class StrokeSpec:
    """Random brush strokes (LaMa's ``irregular_kwargs``); lengths in pixels, angles in radians."""

    max_angle: int = 4  # segment direction is 0.01 + randint(max_angle) radians
    max_len: int = 60  # segment length is 10 + randint(max_len) px
    max_width: int = 20  # brush width is 5 + randint(max_width) px
    min_times: int = 0  # fewest strokes
    max_times: int = 10  # most strokes is max_times + 1 (LaMa's generator adds one)


@dataclass(frozen=True)
class BoxSpec:
    """Random rectangles (LaMa's ``box_kwargs``); sizes in pixels."""

    margin: int = 10  # boxes keep this distance from the image border
    bbox_min_size: int = 30  # shortest box side
    bbox_max_size: int = 100  # longest box side (capped by the canvas minus 2 margins)
    min_times: int = 0  # fewest boxes
    max_times: int = 3  # most boxes


@dataclass(frozen=True)
class MaskMix:
    """A mixture of stroke and box generators, one picked per mask.

    ``stroke_proba`` and ``box_proba`` need not sum to 1 (they are normalised, as in LaMa).
    ``max_area`` rejects (redraws) masks whose hole fraction exceeds it; ``size_px`` is the square
    canvas side the preset was designed for (its lengths are absolute pixels).
    """

    stroke: StrokeSpec = field(default_factory=StrokeSpec)
    box: BoxSpec = field(default_factory=BoxSpec)
    stroke_proba: float = 1.0
    box_proba: float = 0.0
    max_area: float = 1.0
    size_px: int = 256


PRESETS: dict[str, MaskMix] = {
    # configs/training/data/abl-04-256-mh-dist.yaml (big-lama / lama-fourier training): 50 %
    # strokes, 50 % boxes on 256 px crops. The shipped big-lama config has box max_times 3, the
    # repo 4; the repo value is used (LAMA_REFERENCE.md section e).
    "big-lama": MaskMix(
        stroke=StrokeSpec(max_angle=4, max_len=200, max_width=100, min_times=1, max_times=5),
        box=BoxSpec(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=4),
        stroke_proba=1.0,
        box_proba=1.0,
        size_px=256,
    ),
    # configs/data_gen/random_*.yaml: LaMa's evaluation masks (Places narrow = thin, wide = thick).
    "thin_256": MaskMix(
        stroke=StrokeSpec(max_angle=4, max_len=40, max_width=10, min_times=4, max_times=50),
        stroke_proba=1.0,
        box_proba=0.0,
        max_area=0.5,
        size_px=256,
    ),
    "medium_256": MaskMix(
        stroke=StrokeSpec(max_angle=4, max_len=100, max_width=50, min_times=4, max_times=5),
        box=BoxSpec(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5),
        stroke_proba=1.0,
        box_proba=0.3,
        max_area=0.5,
        size_px=256,
    ),
    "thick_256": MaskMix(
        stroke=StrokeSpec(max_angle=4, max_len=200, max_width=100, min_times=1, max_times=5),
        box=BoxSpec(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
        stroke_proba=1.0,
        box_proba=0.3,
        max_area=0.5,
        size_px=256,
    ),
    "thin_512": MaskMix(
        stroke=StrokeSpec(max_angle=4, max_len=100, max_width=20, min_times=4, max_times=70),
        stroke_proba=1.0,
        box_proba=0.0,
        max_area=0.5,
        size_px=512,
    ),
    "medium_512": MaskMix(
        stroke=StrokeSpec(max_angle=4, max_len=200, max_width=100, min_times=4, max_times=10),
        box=BoxSpec(margin=0, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=5),
        stroke_proba=1.0,
        box_proba=0.3,
        max_area=0.5,
        size_px=512,
    ),
    "thick_512": MaskMix(
        stroke=StrokeSpec(max_angle=4, max_len=450, max_width=250, min_times=1, max_times=5),
        box=BoxSpec(margin=10, bbox_min_size=30, bbox_max_size=300, min_times=1, max_times=4),
        stroke_proba=1.0,
        box_proba=0.3,
        max_area=0.5,
        size_px=512,
    ),
}


def get_preset(name: str) -> MaskMix:
    """The :class:`MaskMix` registered under ``name`` (see :data:`PRESETS`).

    Raises:
        ConfigError: unknown name; the message lists the valid ones and the closest.
    """
    try:
        return PRESETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"mask preset {name!r} is unknown{hint}; expected one of {', '.join(PRESETS)}"
        ) from None


def scale_mix(mix: MaskMix, size_px: int) -> MaskMix:
    """The same mixture on a ``size_px`` canvas: every length scaled by ``size_px / mix.size_px``.

    Counts, angles, probabilities and ``max_area`` are kept, so the hole-area distribution stays
    about the same (used for training crops smaller or larger than the preset's canvas).
    """
    f = size_px / mix.size_px

    def px(v: int, lo: int) -> int:
        return max(lo, round(v * f))

    stroke = replace(
        mix.stroke, max_len=px(mix.stroke.max_len, 1), max_width=px(mix.stroke.max_width, 1)
    )
    box = replace(
        mix.box,
        margin=px(mix.box.margin, 0) if mix.box.margin else 0,
        bbox_min_size=px(mix.box.bbox_min_size, 1),
        bbox_max_size=px(mix.box.bbox_max_size, 1),
    )
    return replace(mix, stroke=stroke, box=box, size_px=int(size_px))


def draw_strokes(
    rng: np.random.Generator, height: int, width: int, spec: StrokeSpec
) -> NDArray[np.bool_]:
    """One mask of random brush strokes.

    Args:
        rng: the random source (advanced by this call).
        height: canvas height in pixels.
        width: canvas width in pixels.
        spec: stroke parameters.

    Returns:
        (height, width) bool, True = hole.
    """
    canvas = np.zeros((height, width), np.uint8)
    # LaMa's RandomIrregularMaskGenerator passes max_times = min_times + 1 + (max - min) to the
    # drawing function, which then draws randint(min_times, that + 1) strokes.
    n_strokes = int(rng.integers(spec.min_times, spec.max_times + 2))
    for i in range(n_strokes):
        x, y = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + float(rng.integers(spec.max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = 10 + int(rng.integers(spec.max_len))
            brush_px = 5 + int(rng.integers(spec.max_width))
            end_x = int(np.clip(int(x + length * math.sin(angle)), 0, width))
            end_y = int(np.clip(int(y + length * math.cos(angle)), 0, height))
            cv2.line(canvas, (x, y), (end_x, end_y), 1, brush_px)
            x, y = end_x, end_y
    return canvas.astype(bool)


def draw_boxes(
    rng: np.random.Generator, height: int, width: int, spec: BoxSpec
) -> NDArray[np.bool_]:
    """One mask of random axis-aligned rectangles.

    Args:
        rng: the random source (advanced by this call).
        height: canvas height in pixels.
        width: canvas width in pixels.
        spec: box parameters.

    Returns:
        (height, width) bool, True = hole.

    Raises:
        ConfigError: the canvas minus its margins is smaller than ``spec.bbox_min_size``.
    """
    max_side = min(spec.bbox_max_size, height - 2 * spec.margin, width - 2 * spec.margin)
    if max_side < spec.bbox_min_size:
        raise ConfigError(
            f"a {width}x{height} canvas leaves {max(0, max_side)} px for boxes of at least "
            f"{spec.bbox_min_size} px with margin {spec.margin}; use a larger crop or smaller boxes"
        )
    mask = np.zeros((height, width), bool)
    for _ in range(int(rng.integers(spec.min_times, spec.max_times + 1))):
        box_w = int(rng.integers(spec.bbox_min_size, max_side + 1))
        box_h = int(rng.integers(spec.bbox_min_size, max_side + 1))
        x0 = int(rng.integers(spec.margin, width - spec.margin - box_w + 1))
        y0 = int(rng.integers(spec.margin, height - spec.margin - box_h + 1))
        mask[y0 : y0 + box_h, x0 : x0 + box_w] = True
    return mask


class MaskGenerator:
    """Seeded source of random hole masks following a :class:`MaskMix` (or a preset name).

    Args:
        mix: a preset name from :data:`PRESETS` or a :class:`MaskMix`.
        seed: seed of the private :class:`numpy.random.Generator` (None = fresh OS entropy).
            Ignored when ``rng`` is given.
        rng: an existing generator to draw from (shared, advanced by every call).

    Example:
        >>> gen = MaskGenerator("thick_256", seed=0)
        >>> gen(256, 256).shape
        (256, 256)
    """

    def __init__(
        self,
        mix: str | MaskMix = "big-lama",
        *,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.mix = get_preset(mix) if isinstance(mix, str) else mix
        probas = np.array([self.mix.stroke_proba, self.mix.box_proba], np.float64)
        if (probas < 0).any() or probas.sum() <= 0:
            raise ConfigError(
                f"mask mixture probabilities {probas.tolist()} must be >= 0 with a positive sum"
            )
        self._probas = probas / probas.sum()
        self.rng = rng if rng is not None else np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"MaskGenerator({self.mix!r})"

    def draw_once(self, height: int, width: int) -> NDArray[np.bool_]:
        """One mask from the mixture, without the area limits: (height, width) bool."""
        if self.rng.choice(2, p=self._probas) == 0:
            return draw_strokes(self.rng, height, width, self.mix.stroke)
        return draw_boxes(self.rng, height, width, self.mix.box)

    def __call__(self, height: int | None = None, width: int | None = None) -> NDArray[np.bool_]:
        """One non-empty mask whose hole fraction is at most ``mix.max_area``.

        Args:
            height: canvas height in pixels (default: the preset's ``size_px``).
            width: canvas width in pixels (default: ``height``).

        Returns:
            (height, width) bool, True = hole. After 100 rejected draws, the non-empty draw with
            the smallest area is returned.
        """
        height = self.mix.size_px if height is None else int(height)
        width = height if width is None else int(width)
        best: NDArray[np.bool_] | None = None
        for _ in range(_MAX_REDRAWS):
            mask = self.draw_once(height, width)
            area = float(mask.mean())
            if 0.0 < area <= self.mix.max_area:
                return mask
            if area > 0.0 and (best is None or area < best.mean()):
                best = mask
        return best if best is not None else mask

    def generate(
        self, n: int, height: int | None = None, width: int | None = None
    ) -> NDArray[np.bool_]:
        """``n`` masks stacked: (n, height, width) bool, True = hole."""
        return np.stack([self(height, width) for _ in range(int(n))])


def hole_areas(masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Hole fraction of each mask: (N, H, W) bool -> (N,) float64 in [0, 1]."""
    return masks.reshape(masks.shape[0], -1).mean(axis=1, dtype=np.float64)
