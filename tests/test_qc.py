"""The editor's review of a removal: the temporal engine's bookkeeping, the tint and the report."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lama_video.cli import app
from lama_video.config import RunConfig, TemporalConfig
from lama_video.engines.classical import ClassicalEngine
from lama_video.errors import EncodeError
from lama_video.pipeline import remove_object
from lama_video.qc import (
    QC_INVENTED,
    QC_LOW_CONFIDENCE,
    QC_PROPAGATED,
    TINT_ALPHA,
    TINT_RGB,
    QcInfo,
    QcReport,
    tint,
)
from lama_video.temporal import TemporalEngine
from lama_video.video import Frame, list_image_files, read_image, write_png

N, H, W = 12, 96, 128
STATIC = (slice(30, 50), slice(90, 110))  # rows, cols of a hole that never moves


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


def _holes() -> list[np.ndarray]:
    """A square moving 4 px per frame (the background under it shows elsewhere) + a static one."""
    out = []
    for t in range(N):
        m = np.zeros((H, W), bool)
        m[40:64, 10 + 4 * t : 34 + 4 * t] = True
        m[STATIC] = True
        out.append(m)
    return out


def test_engine_records_propagated_and_invented_pixels() -> None:
    bg = _background()
    holes = _holes()
    engine = TemporalEngine(ClassicalEngine("telea"), TemporalConfig())
    engine.record_qc = True
    items = [(Frame(t, t, 1, bg.copy()), holes[t]) for t in range(N)]
    for frame, hole, _ in engine.process(items):
        info = engine.pop_qc(frame.index)
        assert info is not None
        # The bookkeeping covers exactly the hole.
        covered = np.zeros((H, W), bool)
        covered[info.ys, info.xs] = True
        assert np.array_equal(covered, hole)
        classes = info.classes
        static = np.zeros((H, W), bool)
        static[STATIC] = True
        in_static = static[info.ys, info.xs]
        # Nothing ever shows what the static hole hides: all of it is invented.
        assert np.all(classes[in_static] == QC_INVENTED)
        assert np.all(info.confidence[in_static] == 0)
        # The moving hole is mostly copied from the frames where its background shows.
        if 2 <= frame.index <= N - 3:
            moving = classes[~in_static]
            assert np.mean(moving != QC_INVENTED) > 0.8, frame.index
    assert engine.pop_qc(0) is None  # taken once; nothing is kept after that


def test_tint_paints_each_class_and_nothing_else() -> None:
    rgb = np.full((4, 5, 3), 100, np.uint8)
    info = QcInfo(
        ys=np.array([0, 1, 2]),
        xs=np.array([0, 1, 2]),
        confidence=np.array([1.0, 0.0, 0.2], np.float32),
    )
    assert list(info.classes) == [QC_PROPAGATED, QC_INVENTED, QC_LOW_CONFIDENCE]
    out = tint(rgb, info)
    for (y, x), cls in zip([(0, 0), (1, 1), (2, 2)], info.classes, strict=True):
        colour = np.array(TINT_RGB[int(cls)], np.float32)
        want = np.floor((1 - TINT_ALPHA) * np.float32(100) + TINT_ALPHA * colour + 0.5)
        assert np.array_equal(out[y, x], want.astype(np.uint8))
    untouched = np.ones((4, 5), bool)
    untouched[[0, 1, 2], [0, 1, 2]] = False
    assert np.array_equal(out[untouched], rgb[untouched])
    assert tint(rgb, None) is rgb


def _clip(tmp_path: Path) -> tuple[Path, Path]:
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    bg = _background(1)
    for t, hole in enumerate(_holes()):
        write_png(frames / f"{t:05d}.png", bg)
        cv2.imwrite(str(masks / f"{t:05d}.png"), hole.astype(np.uint8) * 255)
    return frames, masks


def test_review_frames_and_report_match_the_engines_bookkeeping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, masks = _clip(tmp_path)
    seen: dict[int, QcInfo | None] = {}
    real_pop = TemporalEngine.pop_qc

    def spy(self: TemporalEngine, index: int) -> QcInfo | None:
        seen[index] = real_pop(self, index)
        return seen[index]

    monkeypatch.setattr(TemporalEngine, "pop_qc", spy)
    cfg = RunConfig().replace({"inpaint": {"engine": "telea"}, "masks": {"dilate_px": 0}})
    out, qc, report = tmp_path / "out", tmp_path / "qc", tmp_path / "report.json"
    remove_object(frames, masks, out, config=cfg, qc=qc, report=report)

    outs = [read_image(p) for p in list_image_files(out)]
    reviews = [read_image(p) for p in list_image_files(qc)]
    assert len(outs) == len(reviews) == N == len(seen)
    for t in range(N):
        info = seen[t]
        assert info is not None
        assert np.array_equal(reviews[t], tint(outs[t], info))  # the tint is the bookkeeping
        hole = np.zeros((H, W), bool)
        hole[info.ys, info.xs] = True
        assert np.array_equal(reviews[t][~hole], outs[t][~hole])

    data = json.loads(report.read_text())
    assert [f["frame"] for f in data["frames"]] == list(range(N))  # every frame is listed
    for f in data["frames"]:
        info = seen[f["frame"]]
        assert info is not None
        classes = info.classes
        assert f["hole_px"] == classes.size
        assert f["invented"] == pytest.approx(np.mean(classes == QC_INVENTED), abs=1e-4)
        assert f["propagated"] + f["invented"] + f["low_confidence"] == pytest.approx(1, abs=1e-3)
        assert 0 <= f["mean_confidence"] <= 1
    assert set(data["worth_a_look"]) <= set(range(N))


def test_cli_review_per_frame_engine_invents_everything(tmp_path: Path) -> None:
    frames, masks = _clip(tmp_path)
    out, qc, report = tmp_path / "o.mp4", tmp_path / "qc.mp4", tmp_path / "r.json"
    res = CliRunner().invoke(
        app,
        [
            "-q",
            "remove",
            str(frames),
            "--mask",
            str(masks),
            "-o",
            str(out),
            "--qc",
            str(qc),
            "--report",
            str(report),
            "--engine",
            "telea",
            "--no-temporal",
            "--preset",
            "ultrafast",
        ],
    )
    assert res.exit_code == 0, res.output
    assert qc.stat().st_size > 1000
    data = json.loads(report.read_text())
    assert len(data["frames"]) == N
    assert all(f["invented"] == 1.0 and f["mean_confidence"] == 0.0 for f in data["frames"])
    assert len(data["worth_a_look"]) == min(10, N)


def test_review_paths_follow_the_output_rules(tmp_path: Path) -> None:
    frames, masks = _clip(tmp_path)
    cfg = RunConfig().replace({"inpaint": {"engine": "telea"}})
    with pytest.raises(EncodeError, match="is the input"):
        remove_object(frames, masks, tmp_path / "o", config=cfg, qc=masks)
    with pytest.raises(EncodeError, match="is the output path too"):
        remove_object(frames, masks, tmp_path / "o", config=cfg, report=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_report_orders_frames_worth_a_look() -> None:
    rep = QcReport()
    sure = QcInfo(np.arange(4), np.arange(4), np.ones(4, np.float32))
    unsure = QcInfo(np.arange(4), np.arange(4), np.full(4, 0.25, np.float32))
    invented = QcInfo(np.arange(8), np.arange(8), np.zeros(8, np.float32))
    for i, info in enumerate([sure, unsure, None, invented]):
        rep.add(i, i / 25, info)
    assert rep.worth_a_look() == [3, 1]
    assert rep.frames[2]["hole_px"] == 0


def test_stage_hook_sees_every_stage_inside_the_hole() -> None:
    """The diagnostics behind bench/fill_quality.py --stages: each stage, only hole pixels."""
    bg = _background(2)
    holes = _holes()
    engine = TemporalEngine(ClassicalEngine("telea"), TemporalConfig())
    calls: dict[str, set[int]] = {}

    def hook(stage: str, index: int, img: np.ndarray, valid: np.ndarray) -> None:
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        assert valid.any() and not (valid & ~holes[index]).any()
        assert np.array_equal(img[~holes[index]], bg[~holes[index]])  # outside: untouched
        calls.setdefault(stage, set()).add(index)

    engine.stage_hook = hook
    outs = [
        o for _, _, o in engine.process((Frame(t, t, 1, bg.copy()), holes[t]) for t in range(N))
    ]
    assert len(outs) == N
    stages = ("propagated", "seam", "confidence", "hallucinated", "smoothed")
    assert set(calls) == set(stages)
    assert all(calls[s] == set(range(N)) for s in stages)
