"""Tests of lama_video.engines.classical (OpenCV Telea / Navier-Stokes engine)."""

from __future__ import annotations

import numpy as np
import pytest

from lama_video.engines import ImageEngine
from lama_video.engines.classical import ClassicalEngine


def _batch(n: int = 3, h: int = 37, w: int = 53, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 4, yy * 6, (xx + yy) * 2], axis=-1).astype(np.float64)
    frames = np.clip(base[None] + rng.normal(0, 3, (n, h, w, 3)), 0, 255).astype(np.uint8)
    masks = np.zeros((n, h, w), bool)
    masks[0, 10:20, 15:30] = True
    masks[1, 0:5, 0:7] = True  # touches the corner
    masks[1, 30:, 40:] = True
    # frame 2 has no hole
    return frames, masks


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_outside_pixels_bit_exact_and_hole_filled(method: str) -> None:
    frames, masks = _batch()
    eng = ClassicalEngine(method, radius_px=3)
    assert isinstance(eng, ImageEngine)
    assert eng.name == method
    out = eng.inpaint(frames, masks)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[~masks], frames[~masks])
    assert np.array_equal(out[2], frames[2])
    # The fill follows the smooth gradient: inside the hole it stays close to the hidden truth
    # (not zeros, not garbage).
    hole = masks[0]
    err = np.abs(out[0][hole].astype(int) - frames[0][hole].astype(int)).mean()
    assert err < 25, err
    assert frames is not out


def test_call_alias_and_input_untouched() -> None:
    frames, masks = _batch(seed=1)
    before = frames.copy()
    eng = ClassicalEngine()
    out = eng(frames, masks)
    assert np.array_equal(frames, before)
    assert np.array_equal(out, eng.inpaint(frames, masks))  # deterministic


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="telea, ns"):
        ClassicalEngine("lama")
    with pytest.raises(ValueError, match="radius_px"):
        ClassicalEngine(radius_px=0)
    frames, masks = _batch()
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        ClassicalEngine().inpaint(frames.astype(np.float32), masks)
    with pytest.raises(ValueError, match=r"\(N, H, W\) bool"):
        ClassicalEngine().inpaint(frames, masks.astype(np.uint8))


@pytest.mark.parametrize("method", ["telea", "ns"])
@pytest.mark.parametrize("radius", [1, 5, 12])
def test_filling_the_holes_box_on_threads_equals_opencv_on_the_whole_frame(
    method: str, radius: int, monkeypatch
) -> None:
    # Real frames of the sample clip; holes inside, along an edge, across the frame, scattered.
    import cv2
    from overlay_helpers import sample_frames

    import lama_video.engines.classical as classical

    frames = np.stack(sample_frames()[:6])
    n, h, w = frames.shape[:3]
    masks = np.zeros((n, h, w), bool)
    masks[0, 100:160, 200:260] = True
    masks[1, :30, :45] = True  # the corner
    masks[2, h - 4 :, 100:400] = True  # along the bottom edge
    masks[3, 150:153, :] = True  # a line across the whole frame
    masks[4] = np.random.default_rng(0).random((h, w)) > 0.997  # scattered pixels
    masks[5, 10:12, 500:502] = True
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    whole = frames.copy()
    for i in range(n):
        filled = cv2.inpaint(frames[i], masks[i].view(np.uint8) * np.uint8(255), radius, flag)
        np.copyto(whole[i], filled, where=masks[i][..., None])
    assert np.array_equal(ClassicalEngine(method, radius).inpaint(frames, masks), whole)
    monkeypatch.setattr(classical, "WORKER_THREADS", 1)
    assert np.array_equal(ClassicalEngine(method, radius).inpaint(frames, masks), whole)


def test_an_error_in_one_frame_of_a_threaded_batch_is_raised() -> None:
    from lama_video.engines.base import fill_each

    frames, masks = _batch()

    def fill(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
        if hole[0, 0]:
            raise RuntimeError("frame with the corner hole")
        return frame

    with pytest.raises(RuntimeError, match="corner hole"):
        fill_each(frames, masks, fill, threads=2)


def test_an_error_in_a_threaded_batch_drops_the_frames_not_started() -> None:
    import threading
    import time

    from lama_video.engines.base import fill_each

    frames = np.zeros((10, 8, 8, 3), np.uint8)
    masks = np.ones((10, 8, 8), bool)
    started: list[int] = []
    lock = threading.Lock()

    def fill(frame: np.ndarray, hole: np.ndarray) -> np.ndarray:
        with lock:
            started.append(len(started))
            first = len(started) == 1
        if first:
            raise RuntimeError("the first frame fails")
        time.sleep(0.05)
        return frame

    with pytest.raises(RuntimeError, match="first frame"):
        fill_each(frames, masks, fill, threads=2)
    assert len(started) < 10  # the rest were cancelled, not filled before the error came back
