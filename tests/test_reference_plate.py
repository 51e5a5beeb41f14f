"""Clean plates (``remove --reference FRAME:IMAGE``): what no frame shows comes from the plate."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lama_video import flow as fl
from lama_video.cli import app
from lama_video.config import TemporalConfig
from lama_video.engines.exemplar import ExemplarEngine
from lama_video.errors import MaskError
from lama_video.masks import Box
from lama_video.pipeline import remove_object
from lama_video.temporal import TemporalEngine, check_plate
from lama_video.video import Frame

H, W, N = 120, 160, 12
MEDIA = Path(__file__).parent / "fixtures" / "media"


def _world() -> np.ndarray:
    """A wide textured scene with vertical bars (what the exemplar engine does not invent)."""
    rng = np.random.default_rng(1)
    big = cv2.GaussianBlur(rng.integers(0, 255, (H + 80, W + 200, 3)).astype(np.uint8), (0, 0), 1.5)
    bars = 60.0 * (np.sin(np.arange(W + 200) / 3.0) > 0)
    return np.clip(big * 0.5 + bars[None, :, None], 0, 255).astype(np.uint8)


WORLD = _world()
HOLE = np.zeros((H, W), bool)
HOLE[40:80, 60:100] = True  # a still object over the middle: never uncovered


def _scene(t: int, pan: int) -> np.ndarray:
    x0 = 20 + pan * t  # the camera pans right by `pan` px a frame
    return WORLD[20 : 20 + H, x0 : x0 + W].copy()


def _remove(
    truth: list[np.ndarray],
    plates: dict[int, np.ndarray],
    qc: bool = False,
    cfg: TemporalConfig | None = None,
    scene: list[np.ndarray] | None = None,
    hole: np.ndarray = HOLE,
):
    engine = TemporalEngine(ExemplarEngine(), cfg)
    engine.references = dict(plates)
    engine.scene_plates = list(scene or [])
    engine.record_qc = qc
    items = []
    for t, g in enumerate(truth):
        f = g.copy()
        f[hole] = (255, 0, 0)
        items.append((Frame(index=t, pts=t, time_base=Fraction(1, 25), rgb=f), hole))
    outs, infos = [], []
    for frame, _, out in engine.process(iter(items)):
        outs.append(out)
        infos.append(engine.pop_qc(frame.index) if qc else None)
    return outs, infos


def _errors(outs: list[np.ndarray], truth: list[np.ndarray], hole: np.ndarray = HOLE) -> np.ndarray:
    return np.array(
        [np.abs(o[hole].astype(int) - g[hole]).mean() for o, g in zip(outs, truth, strict=True)]
    )


def test_still_camera_takes_the_plate_in_every_frame_and_invents_nothing():
    truth = [_scene(t, 0) for t in range(N)]
    without, _ = _remove(truth, {})
    with_plate, infos = _remove(truth, {5: truth[5]}, qc=True)
    assert _errors(without, truth).mean() > 8  # the bars are not invented
    assert _errors(with_plate, truth).max() < 0.5  # exact, in every frame
    for info in infos:  # the plate's pixels count as copied from footage, none as invented
        assert info is not None and info.ys.size == HOLE.sum()
        assert (info.confidence == 1.0).all()


def test_the_plate_is_carried_along_a_pan():
    truth = [_scene(t, 3) for t in range(N)]
    without, _ = _remove(truth, {})
    with_plate, _ = _remove(truth, {5: truth[5]})
    err, base = _errors(with_plate, truth), _errors(without, truth)
    assert err[5] < 0.5  # the plate's own frame is the plate
    assert err.mean() < 0.65 * base.mean()


# Windows of 6 frames sharing 2: a plate on frame 1 is in the first window only, and the later
# windows' frames take it by alignment (flow.align_homography), not by propagation.
SHORT = TemporalConfig(window_frames=6, overlap_frames=2)


def test_frames_in_other_windows_take_the_aligned_plate_in_their_own_light():
    truth = [_scene(t, 0) for t in range(N)]
    truth[6:] = [np.clip(g.astype(int) + 10, 0, 255).astype(np.uint8) for g in truth[6:]]
    with_plate, _ = _remove(truth, {1: truth[1]}, cfg=SHORT)
    err = _errors(with_plate, truth)
    assert err[:4].max() < 0.5, err
    # The last window's frames (10 levels brighter than the plate) take it in their light;
    # those next to the switch also get pixels propagated from the other side of it.
    assert err[9:].max() < 1.0, err


def test_a_plate_that_does_not_fit_a_later_shot_leaves_it_to_the_image_engine():
    truth = [_scene(t, 0) for t in range(6)]
    other = np.ascontiguousarray(WORLD[70 : 70 + H, 170 : 170 + W][::-1, ::-1])
    truth += [other.copy() for _ in range(6)]  # a cut to another scene at frame 6
    without, _ = _remove(truth, {}, cfg=SHORT)
    with_plate, _ = _remove(truth, {1: truth[1]}, cfg=SHORT)
    assert _errors(with_plate, truth)[:4].max() < 0.5
    for t in (10, 11):  # frames of the last window alone: exactly as without a plate
        assert np.array_equal(with_plate[t], without[t])


def test_a_plate_that_is_not_its_frame_is_refused():
    truth = [_scene(t, 0) for t in range(N)]
    with pytest.raises(MaskError, match="differs from that frame"):
        _remove(truth, {5: 255 - truth[5]})  # another image altogether


def test_align_homography_recovers_a_large_motion_and_refuses_unrelated_frames():
    src = cv2.cvtColor(
        cv2.resize(WORLD, (640, 400), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2GRAY
    )
    true = np.array([[1.0, 0.01, 57.3], [0.004, 1.0, -31.6], [0.0, 0.0, 1.0]])
    dst = cv2.warpPerspective(src, true, (640, 400))
    where = np.ones(src.shape, bool)
    hom = fl.align_homography(src, dst, where)
    assert hom is not None
    pts = np.float32([[150, 120], [300, 200], [250, 300]]).reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(pts, hom) - cv2.perspectiveTransform(pts, true)
    assert np.abs(moved).max() < 0.25  # sub-pixel (the matched fit alone is about 1 px)
    noise = np.random.default_rng(5).integers(0, 255, src.shape).astype(np.uint8)
    assert fl.align_homography(src, noise, where) is None


def _frames_folder(tmp_path: Path, truth: list[np.ndarray]) -> Path:
    d = tmp_path / "frames"
    d.mkdir()
    for t, g in enumerate(truth):
        f = g.copy()
        f[HOLE] = (255, 0, 0)
        cv2.imwrite(str(d / f"{t:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return d


def _cli_remove(frames: Path, out: Path, *args: str):  # type: ignore[no-untyped-def]
    """``lama-video -q remove FRAMES --box <the object> -o OUT ARGS``."""
    return CliRunner().invoke(
        app, ["-q", "remove", str(frames), "--box", "60,40,40,40", "-o", str(out), *args]
    )


def test_cli_reference_end_to_end(tmp_path):
    truth = [_scene(t, 0) for t in range(N)]
    frames = _frames_folder(tmp_path, truth)
    plate = tmp_path / "plate.png"
    cv2.imwrite(str(plate), cv2.cvtColor(truth[7], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    res = _cli_remove(frames, out, "--dilate", "0", "--reference", f"7:{plate}")
    assert res.exit_code == 0, res.output
    got = sorted(out.glob("*.png"))
    assert len(got) == N
    for g, p in zip(truth, got, strict=True):
        o = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        assert np.abs(o[HOLE].astype(int) - g[HOLE]).mean() < 0.5


@pytest.mark.parametrize(
    ("spec", "extra", "message"),
    [
        ("x7:{plate}", [], "expected FRAME:PATH with a 0-based frame number"),
        ("99:{plate}", [], "frame 99 is not in the clip (frames 0..11)"),
        ("3:{small}", [], "is 80x60 but the video is 160x120"),
        ("3:{missing}", [], "does not exist"),
        ("3:{plate}", ["--no-temporal"], "--reference needs the temporal engine"),
        ("3:{flipped}", [], "differs from that frame"),
    ],
)
def test_cli_reference_errors_exit_1_and_write_nothing(tmp_path, spec, extra, message):
    truth = [_scene(t, 0) for t in range(N)]
    frames = _frames_folder(tmp_path, truth)
    plate, small = tmp_path / "plate.png", tmp_path / "small.png"
    cv2.imwrite(str(plate), truth[3])
    cv2.imwrite(str(small), truth[3][:60, :80])
    flipped = tmp_path / "flipped.png"
    cv2.imwrite(str(flipped), 255 - truth[3])
    ref = spec.format(plate=plate, small=small, missing=tmp_path / "nope.png", flipped=flipped)
    out = tmp_path / "out.mp4"
    res = _cli_remove(frames, out, "--reference", ref, *extra)
    assert res.exit_code == 1, res.output
    last = [line for line in res.output.splitlines() if line.strip()][-1]
    assert last.startswith("error: ") and message in last, res.output
    assert not out.exists()


def test_the_same_frame_twice_is_refused(tmp_path):
    truth = [_scene(t, 0) for t in range(N)]
    frames = _frames_folder(tmp_path, truth)
    plate = tmp_path / "plate.png"
    cv2.imwrite(str(plate), truth[3])
    res = _cli_remove(
        frames, tmp_path / "o.mp4", "--reference", f"3:{plate}", "--reference", f"3:{plate}"
    )
    assert res.exit_code == 1 and "gives frame 3 twice" in res.output


def test_a_wrong_plate_is_refused_before_any_frame_is_removed(tmp_path, monkeypatch):
    truth = [_scene(t, 0) for t in range(N)]
    frames = _frames_folder(tmp_path, truth)
    wrong = tmp_path / "wrong.png"
    cv2.imwrite(str(wrong), 255 - truth[11])

    def no_work(*args, **kwargs):
        raise AssertionError("the engine started before the plates were checked")

    monkeypatch.setattr(TemporalEngine, "process", no_work)
    with pytest.raises(MaskError, match="clean plate for frame 11 differs from that frame"):
        remove_object(frames, Box(60, 40, 40, 40), tmp_path / "out.mp4", references={11: wrong})
    assert not (tmp_path / "out.mp4").exists()


def test_the_check_before_work_lets_a_plate_painted_over_most_of_the_frame_pass():
    frame = _scene(0, 0)
    painted = frame.copy()
    painted[:, : int(W * 0.65)] = (90, 140, 60)  # 65 % of the frame painted over
    check_plate(painted, frame, None, 0)  # before work: the lower quartile is the frame's
    hole = np.zeros((H, W), bool)
    hole[:, : int(W * 0.65)] = True
    check_plate(painted, frame, hole, 0)  # in the engine: away from the hole
    with pytest.raises(MaskError, match="lower quartile over the frame"):
        check_plate(255 - frame, frame, None, 0)
    with pytest.raises(MaskError, match="median away from the hole"):
        check_plate(painted, frame, np.zeros((H, W), bool), 0)  # painted beyond the hole


def test_cli_reference_folder_of_plates(tmp_path):
    truth = [_scene(t, 0) for t in range(N)]
    frames = _frames_folder(tmp_path, truth)
    plates = tmp_path / "plates"
    plates.mkdir()
    cv2.imwrite(str(plates / "00004.png"), cv2.cvtColor(truth[4], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    res = _cli_remove(frames, out, "--dilate", "0", "--reference", str(plates))
    assert res.exit_code == 0, res.output
    for g, p in zip(truth, sorted(out.glob("*.png")), strict=True):
        o = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        assert np.abs(o[HOLE].astype(int) - g[HOLE]).mean() < 0.5
    # The same frame from the folder and from FRAME:IMAGE is given twice.
    res = _cli_remove(
        frames,
        tmp_path / "o.mp4",
        "--reference",
        str(plates),
        "--reference",
        f"4:{plates}/00004.png",
    )
    assert res.exit_code == 1 and "gives frame 4 twice" in res.output
    (plates / "plate.png").write_bytes((plates / "00004.png").read_bytes())
    res = _cli_remove(frames, tmp_path / "o.mp4", "--reference", str(plates))
    assert res.exit_code == 1 and "clean plate" in res.output and "no frame number" in res.output


def test_a_plate_of_the_empty_scene_from_elsewhere_is_aligned_to_every_frame():
    """A clean plate shot on set: a wider picture of the scene at another scale, no frame of the
    clip (a scene of many objects' corners, 400x300 frames: what ORB matching needs)."""
    rng = np.random.default_rng(7)
    world = np.full((500, 900, 3), 128, np.uint8)
    for _ in range(400):
        x, y = (int(v) for v in rng.integers(0, (900, 500)))
        dx, dy = (int(v) for v in rng.integers(8, 60, 2))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(world, (x, y), (x + dx, y + dy), colour, -1)
    world = cv2.GaussianBlur(world, (0, 0), 0.8)
    h, w = 300, 400
    hole = np.zeros((h, w), bool)
    hole[100:200, 150:250] = True
    truth = [world[50 : 50 + h, 50 : 50 + w].copy() for _ in range(8)]
    shot = cv2.resize(world[:400, :600], None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)

    without, _ = _remove(truth, {}, hole=hole)
    with_plate, infos = _remove(truth, {}, qc=True, scene=[shot], hole=hole)
    assert _errors(without, truth, hole).mean() > 8
    assert _errors(with_plate, truth, hole).max() < 3.0  # resampled twice (x1.5, then back)
    assert all(i is not None and (i.confidence == 1.0).all() for i in infos)
    # A picture of another place is not used: the fill is the engine's own.
    other = np.ascontiguousarray(world[::-1, ::-1][:400, :600])
    with_other, _ = _remove(truth, {}, scene=[other], hole=hole)
    for a, b in zip(without, with_other, strict=True):
        assert np.array_equal(a, b)


def test_cli_clean_plate_of_the_scene(tmp_path):
    truth = [_scene(t, 0) for t in range(N)]
    frames = _frames_folder(tmp_path, truth)
    shot = tmp_path / "set.png"
    cv2.imwrite(str(shot), cv2.cvtColor(WORLD[0 : H + 60, 0 : W + 80], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    # At 160x120 the shot cannot be aligned (too few ORB keypoints): the run still succeeds.
    res = _cli_remove(frames, out, "--dilate", "0", "--clean-plate", str(shot))
    assert res.exit_code == 0, res.output
    assert len(list(out.glob("*.png"))) == N
    res = _cli_remove(frames, tmp_path / "o.mp4", "--clean-plate", str(shot), "--no-temporal")
    assert res.exit_code == 1 and "--clean-plate needs the temporal engine" in res.output
    res = _cli_remove(frames, tmp_path / "o.mp4", "--clean-plate", str(tmp_path / "nope.png"))
    assert res.exit_code == 1 and "does not exist" in res.output
    assert not (tmp_path / "o.mp4").exists()
