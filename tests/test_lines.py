"""lines.py: long straight thin parts of a tracked object carried as lines (a fan of lines
hanging from a moving body, which opens and turns as the body moves)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lama_video import propagate as propagate_module
from lama_video.config import PropagationConfig
from lama_video.lines import StraightParts, _far_end, _Line, _wrapped
from lama_video.propagate import propagate_masks, thin_parts

H, W, N = 240, 320, 30
ANCHOR = (150.0, 150.0)  # where the lines meet the body on frame 0 (x, y)
ANGLES = np.deg2rad([-120.0, -108.0, -96.0, -84.0, -72.0, -60.0])  # up and to both sides
MOVE = (1.5, 1.0)  # the body's motion per frame (dx, dy)
TURN, FAN = np.deg2rad(0.4), 0.015  # per frame: the fan turns and opens (a share of its spread)


def _texture(seed: int, cell: int, lo: float, span: float, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 1, (H // cell, W // cell, 3)).astype(np.float32)
    smooth = cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)
    return np.clip((lo + span * smooth) * np.float32(tint), 0, 255).astype(np.uint8)


def _background() -> np.ndarray:
    return _texture(3, 8, 150, 80)


def _fan(t: int) -> tuple[float, float, np.ndarray]:
    ax, ay = ANCHOR[0] + MOVE[0] * t, ANCHOR[1] + MOVE[1] * t
    centre = float(ANGLES.mean())
    angles = centre + (1.0 + FAN) ** t * (ANGLES - centre) + TURN * t
    return ax, ay, angles


def _scene(with_lines_in_image: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames and true masks: a red textured body (an ellipse) moving over a bright texture,
    with six dark grey one-pixel lines from its top to the frame's top edge (a fan that turns
    and opens as the body moves)."""
    bg = _background()
    skin = _texture(4, 4, 120, 100, tint=(1.0, 0.35, 0.3))  # red, its texture moving with it
    frames, truth = [], []
    for t in range(N):
        img = bg.copy()
        mask = np.zeros((H, W), np.uint8)
        ax, ay, angles = _fan(t)
        centre = (round(ax), round(ay + 22))
        cv2.ellipse(mask, centre, (16, 24), 0, 0, 360, 1, -1)
        body = mask.astype(bool)
        shift = np.float32([[1, 0, MOVE[0] * t], [0, 1, MOVE[1] * t]])
        img[body] = cv2.warpAffine(skin, shift, (W, H), borderMode=cv2.BORDER_REFLECT)[body]
        for a in angles:
            end = (round(ax + 400 * np.cos(a)), round(ay + 400 * np.sin(a)))
            cv2.line(mask, (round(ax), round(ay)), end, 1, 1)
            if with_lines_in_image:
                cv2.line(img, (round(ax), round(ay)), end, (40, 40, 40), 1, cv2.LINE_AA)
        frames.append(img)
        truth.append(mask.astype(bool))
    return frames, truth


def _line_pixels(truth: np.ndarray) -> np.ndarray:
    return thin_parts(truth, 2)


@pytest.fixture(scope="module")
def scene() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return _scene()


def test_the_keyframe_lines_are_found_anchored_on_the_body(scene):
    frames, truth = scene
    thin = thin_parts(truth[0], 2)
    lines = StraightParts.find(frames[0], truth[0] & ~thin, thin)
    assert lines is not None and len(lines) == len(ANGLES)
    for line in lines._lines:
        assert line.to_edge and line.dark
        assert np.hypot(line.x - ANCHOR[0], line.y - ANCHOR[1]) < 6.0  # where they meet the body
    found = sorted(np.rad2deg([_wrapped(ln.angle) for ln in lines._lines]))
    assert np.allclose(found, sorted(np.rad2deg(ANGLES)), atol=1.0)


def test_a_fan_of_lines_is_carried_as_it_turns_and_opens(scene, monkeypatch):
    """Tracked from the first frame, the lines stay covered on every frame (they turn by 12
    degrees and open by 54 % over the clip); carried as thin pixels only, they are lost."""
    frames, truth = scene
    cfg = PropagationConfig(safety_px=2)
    masks = propagate_masks(frames, {0: truth[0]}, cfg)
    coverage = [float(masks[t][_line_pixels(truth[t])].mean()) for t in range(N)]
    assert min(coverage) > 0.9, coverage
    monkeypatch.setattr(propagate_module.StraightParts, "find", classmethod(lambda *a, **k: None))
    splatted = propagate_masks(frames, {0: truth[0]}, cfg)
    last = float(splatted[N - 1][_line_pixels(truth[N - 1])].mean())
    assert last < 0.6 and last < coverage[N - 1] - 0.3


def test_no_lines_without_a_long_straight_thin_part_or_without_contrast():
    frames, truth = _scene(with_lines_in_image=False)  # marked in the mask, not in the image
    thin = thin_parts(truth[0], 2)
    assert StraightParts.find(frames[0], truth[0] & ~thin, thin) is None
    blob = np.zeros((H, W), bool)
    cv2.circle(blob.view(np.uint8), (100, 100), 30, 1, -1)
    blob[100:102, 130:145] = True  # a short stub
    thin = thin_parts(blob, 2)
    assert StraightParts.find(_background(), blob & ~thin, thin) is None


def test_a_line_runs_to_the_frame_edge_or_to_its_length():
    up = _Line(100.0, 120.0, -np.pi / 2, 30.0, True, True)
    assert np.allclose(_far_end(up, H, W), (100.0, 0.0))
    left = _Line(100.0, 120.0, np.pi, 30.0, True, True)
    assert np.allclose(_far_end(left, H, W), (0.0, 120.0))
    short = _Line(100.0, 120.0, -np.pi / 2, 30.0, False, True)
    assert np.allclose(_far_end(short, H, W), (100.0, 90.0))
    drawn = StraightParts([up], H, W).mask()
    assert drawn[0:121, 100].all() and drawn.sum() == 121


def test_lines_are_found_alike_on_a_frame_six_times_as_large(scene):
    """The search runs on the mask at up to twice the working size, whatever the frame's size."""
    from lama_video.config import RunConfig
    from lama_video.propagate import MaskTracker

    frames, truth = scene
    found = []
    for k in (1, 6):
        big = cv2.resize(frames[0], (W * k, H * k), interpolation=cv2.INTER_CUBIC)
        mask = cv2.resize(truth[0].view(np.uint8), (W * k, H * k), interpolation=cv2.INTER_NEAREST)
        tracker = MaskTracker(RunConfig().propagation, H * k, W * k)
        tracker.reset(tracker.shrink(big), mask.astype(bool))
        assert tracker._lines is not None
        found.append(sorted(np.rad2deg([_wrapped(ln.angle) for ln in tracker._lines._lines])))
    truth_deg = np.rad2deg(ANGLES)
    for angles in found:  # every line found, each where a line is (a wide stroke may give two)
        near = np.abs(np.subtract.outer(np.asarray(angles), truth_deg))
        assert (near.min(axis=1) < 1.0).all() and (near.min(axis=0) < 1.0).all(), angles
    assert len(found[0]) == len(ANGLES) and len(found[1]) <= 2 * len(ANGLES)
