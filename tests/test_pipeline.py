"""End-to-end tests of lama_video.pipeline.remove_object on real clips (tests/fixtures/media)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media_helpers import ten_bit_clip

from lama_video.config import RunConfig
from lama_video.errors import EncodeError, MaskError
from lama_video.masks import Box, FrameRange, dilate
from lama_video.pipeline import remove_object
from lama_video.video import list_image_files, open_video, read_image

MEDIA = Path(__file__).parent / "fixtures" / "media"
FAST = RunConfig().replace({"encode": {"preset": "ultrafast"}, "inpaint": {"engine": "telea"}})
PER_FRAME = FAST.replace({"temporal": {"enabled": False}})


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _audio(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.dts is not None]


def _video_pts(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def _moving_masks(folder: Path, n: int, w: int, h: int) -> list[np.ndarray]:
    folder.mkdir()
    out = []
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        m[40:90, 30 + 4 * i : 90 + 4 * i] = 255
        cv2.imwrite(str(folder / f"{i:05d}.png"), m)
        out.append(m > 0)
    return out


@pytest.mark.parametrize("cfg", [PER_FRAME, FAST], ids=["per-frame", "temporal"])
def test_png_output_changes_only_hole_pixels(tmp_path, cfg):
    src = MEDIA / "aac.mp4"
    masks = _moving_masks(tmp_path / "m", 45, 320, 240)
    before = _sha(src)
    res = remove_object(src, tmp_path / "m", tmp_path / "out", config=cfg)
    assert res.frames == 45
    outs = list_image_files(tmp_path / "out")
    assert len(outs) == 45
    with open_video(src) as r:
        for frame, out_png, core in zip(r.frames(), outs, masks, strict=True):
            out = read_image(out_png)
            hole = dilate(core, cfg.masks.dilate_px)
            assert np.array_equal(out[~hole], frame.rgb[~hole])  # bit-identical outside the hole
            assert not np.array_equal(out[core], frame.rgb[core])  # the hole was filled
    assert _sha(src) == before


def test_a_10_bit_source_keeps_its_depth_outside_the_hole(tmp_path):
    # PNG output of a 10-bit source is 16-bit PNG: outside the hole the decoded 16-bit frame
    # bit for bit, inside it the fill.
    src = ten_bit_clip(tmp_path / "hlg.mp4")
    box = Box(500, 8, 60, 40)
    res = remove_object(src, box, tmp_path / "out", config=PER_FRAME)
    assert res.frames == 6
    outs = list_image_files(tmp_path / "out")
    hole = np.zeros((64, 1024), bool)
    hole[8:48, 500:560] = True
    hole = dilate(hole, PER_FRAME.masks.dilate_px)
    with open_video(src) as r:
        for frame, png in zip(r.frames(), outs, strict=True):
            with av.open(str(png)) as c:
                out = next(c.decode(video=0)).to_ndarray(format="rgb48le")
            assert frame.deep is not None
            assert np.array_equal(out[~hole], frame.deep[~hole])
            assert len(np.unique(out[5, :, 1])) > 800  # the ramp at 10 bits, not 8
    deep = remove_object(src, box, tmp_path / "out.mp4", config=PER_FRAME, qc=tmp_path / "qc.mp4")
    assert deep.frames == 6
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert next(c.decode(video=0)).format.name == "yuv420p10le"
    with av.open(str(tmp_path / "qc.mp4")) as c:  # a review drawn in 8 bits: written at 8
        assert next(c.decode(video=0)).format.name == "yuv420p"


def test_video_output_keeps_timing_and_audio(tmp_path):
    src = MEDIA / "vfr_aac.mp4"
    out = tmp_path / "out.mp4"
    res = remove_object(src, Box(10, 10, 60, 40), out, config=PER_FRAME)
    assert res.frames == 42
    assert _video_pts(out) == _video_pts(src)  # variable frame rate kept exactly
    assert _audio(out) == _audio(src)  # audio packets byte-identical
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp file left


def test_static_mask_image(tmp_path):
    m = np.zeros((240, 320), np.uint8)
    m[100:140, 100:180] = 255
    cv2.imwrite(str(tmp_path / "logo.png"), m)
    res = remove_object(
        MEDIA / "aac.mp4", tmp_path / "logo.png", tmp_path / "o.mkv", config=PER_FRAME
    )
    assert res.frames == 45 and (tmp_path / "o.mkv").stat().st_size > 0


def test_an_inverted_mask_is_warned_of_once(tmp_path, caplog):
    """Black where the object is, white elsewhere: the whole frame but the object was filled,
    silently (a night's batch of garbage). Now one warning says how to read masks."""
    m = np.full((240, 320), 255, np.uint8)
    m[100:140, 100:180] = 0
    cv2.imwrite(str(tmp_path / "inverted.png"), m)
    with caplog.at_level("WARNING", logger="lama_video.pipeline"):
        remove_object(
            MEDIA / "aac.mp4", tmp_path / "inverted.png", tmp_path / "o.mp4", config=PER_FRAME
        )
    said = [r.getMessage() for r in caplog.records if "invert them" in r.getMessage()]
    assert len(said) == 1 and "frame 0's mask marks 96 % of the frame" in said[0]
    caplog.clear()
    cv2.imwrite(str(tmp_path / "right.png"), 255 - m)
    with caplog.at_level("WARNING", logger="lama_video.pipeline"):
        remove_object(
            MEDIA / "aac.mp4", tmp_path / "right.png", tmp_path / "p.mp4", config=PER_FRAME
        )
    assert not [r for r in caplog.records if "invert them" in r.getMessage()]


@pytest.mark.parametrize("text", ["10:20", "0.33s:0.66s"])
def test_a_range_changes_only_its_frames(tmp_path, text):
    """`--range` (After Effects' work area): a box removed from frames 10-19 only (29.97 frames/s:
    frame 10 is shown at 0.334 s, frame 20 at 0.667 s); the other frames are written as they are."""
    out = tmp_path / "png"
    frames = FrameRange.parse(text)
    res = remove_object(MEDIA / "aac.mp4", Box(100, 80, 60, 40), out, config=FAST, frames=frames)
    assert res.frames == 45
    src = [f.rgb for f in open_video(MEDIA / "aac.mp4").frames()]
    got = [read_image(p) for p in list_image_files(out)]
    same = [np.array_equal(a, b) for a, b in zip(src, got, strict=True)]
    assert same == [not 10 <= i < 20 for i in range(45)]


def test_masks_for_the_range_only(tmp_path):
    """An editor's mask sequence exported for the frames where the object is (10-19 of 45,
    files numbered 10-19): with --range 10:20 they go to those frames (was: a count error)."""
    folder = tmp_path / "m"
    folder.mkdir()
    for i in range(10, 20):
        m = np.zeros((240, 320), np.uint8)
        m[80:120, 100:160] = 255
        cv2.imwrite(str(folder / f"{i:05d}.png"), m)
    out = tmp_path / "png"
    remove_object(MEDIA / "aac.mp4", folder, out, config=FAST, frames=FrameRange(10, 20))
    src = [f.rgb for f in open_video(MEDIA / "aac.mp4").frames()]
    got = [read_image(p) for p in list_image_files(out)]
    assert [np.array_equal(a, b) for a, b in zip(src, got, strict=True)] == [
        not 10 <= i < 20 for i in range(45)
    ]
    with pytest.raises(MaskError, match="has 10 masks but the video has 45 frames and --range"):
        remove_object(
            MEDIA / "aac.mp4", folder, tmp_path / "o.mp4", config=FAST, frames=FrameRange(10, 30)
        )


def test_range_parsing():
    assert FrameRange.parse("120:") == FrameRange(120, None, False)
    assert FrameRange.parse(":4.5s") == FrameRange(None, 4.5, True)
    assert str(FrameRange.parse("1.5s:3s")) == "1.5s:3s"
    r = FrameRange.parse("10:20")
    assert [r.contains(i, 99.0) for i in (9, 10, 19, 20)] == [False, True, True, False]
    for bad in ("10", ":", "10:5", "1s:20", "a:b", "-3:4", "1.5:3"):
        with pytest.raises(MaskError, match="--range"):
            FrameRange.parse(bad)


def test_a_range_with_nothing_to_remove_says_so(tmp_path):
    with pytest.raises(MaskError, match="no mask marks anything within --range 500:"):
        remove_object(
            MEDIA / "aac.mp4",
            Box(100, 80, 60, 40),
            tmp_path / "o.mp4",
            config=PER_FRAME,
            frames=FrameRange(500, None),
        )
    assert list(tmp_path.iterdir()) == []


def test_a_png_folder_output_says_the_audio_is_not_written(tmp_path, caplog):
    box = Box(100, 80, 60, 40)
    quiet = PER_FRAME.replace({"encode": {"audio": "none"}})
    for out, cfg, warned in (
        ("png", PER_FRAME, True),
        ("png2", quiet, False),
        ("o.mp4", PER_FRAME, False),
    ):
        caplog.clear()
        with caplog.at_level("WARNING", logger="lama_video.pipeline"):
            remove_object(MEDIA / "aac.mp4", box, tmp_path / out, config=cfg)
        said = [r for r in caplog.records if "holds no audio" in r.getMessage()]
        assert len(said) == warned, (out, said)


def test_16_bit_frames_keep_their_depth(tmp_path):
    """A compositor's 16-bit PNG frames came out as 8-bit PNGs (a ramp's 1,000 levels cut to
    256): now the output is 16-bit, the same to the bit outside the hole."""
    src = tmp_path / "frames"
    src.mkdir()
    h, w = 96, 160
    ramp = np.tile(np.linspace(1000, 60000, 1000)[:w], (h, 1))
    frames = []
    for t in range(8):
        img = np.dstack([ramp, ramp * 0.8, ramp * 0.6]).astype(np.uint16)
        img[30:60, 20 + 6 * t : 50 + 6 * t] = 50000
        cv2.imwrite(str(src / f"{t:05d}.png"), img[..., ::-1])
        frames.append(img)
    info = open_video(src).info
    assert info.bit_depth == 16
    out = tmp_path / "out"
    remove_object(src, Box(100, 30, 30, 30), out, config=FAST)
    got = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[..., ::-1] for p in list_image_files(out)]
    keep = np.ones((h, w), bool)
    keep[20:70, 90:140] = False  # the box grown by the default dilation and feather
    for a, b in zip(frames, got, strict=True):
        assert b.dtype == np.uint16 and np.array_equal(a[keep], b[keep])
    assert len(np.unique(got[0][10, :, 0])) == w  # a level per column, as in the source


def test_a_folder_of_frames_keeps_its_frame_names(tmp_path):
    """A compositor's shot_1001.png ... came back as 00000.png ...: the frame numbers of the
    shot were lost. Now each output frame has its input frame's name (as PNG)."""
    src = tmp_path / "shot"
    src.mkdir()
    for t, f in enumerate(list(open_video(MEDIA / "aac.mp4").frames())[:5]):
        cv2.imwrite(str(src / f"shot_{1001 + t}.jpg"), f.rgb[..., ::-1])
    out = tmp_path / "clean"
    remove_object(src, Box(100, 80, 60, 40), out, config=PER_FRAME)
    assert [p.name for p in list_image_files(out)] == [f"shot_{1001 + t}.png" for t in range(5)]


def test_mask_count_mismatch_fails_before_work(tmp_path):
    _moving_masks(tmp_path / "m", 40, 320, 240)
    with pytest.raises(MaskError, match="has 40 masks but the video has 45 frames"):
        remove_object(MEDIA / "aac.mp4", tmp_path / "m", tmp_path / "o.mp4", config=PER_FRAME)
    assert not (tmp_path / "o.mp4").exists()


def test_mask_size_mismatch(tmp_path):
    cv2.imwrite(str(tmp_path / "m.png"), np.full((100, 100), 255, np.uint8))
    with pytest.raises(MaskError, match=r"is 100x100 but the video is 320x240"):
        remove_object(MEDIA / "aac.mp4", tmp_path / "m.png", tmp_path / "o.mp4", config=PER_FRAME)
    assert not (tmp_path / "o.mp4").exists()


def test_output_equal_to_input_and_existing_output(tmp_path):
    src = tmp_path / "in.mp4"
    src.write_bytes((MEDIA / "aac.mp4").read_bytes())
    before = _sha(src)
    with pytest.raises(EncodeError, match="is the input"):
        remove_object(src, Box(0, 0, 8, 8), tmp_path / "." / "in.mp4", config=PER_FRAME)
    assert _sha(src) == before
    existing = tmp_path / "o.mp4"
    existing.write_bytes(b"keep me")
    with pytest.raises(EncodeError, match="already exists; pass --overwrite"):
        remove_object(src, Box(0, 0, 8, 8), existing, config=PER_FRAME)
    assert existing.read_bytes() == b"keep me"
    remove_object(src, Box(0, 0, 8, 8), existing, config=PER_FRAME, overwrite=True)
    assert len(_video_pts(existing)) == 45


def test_interrupt_leaves_no_output(tmp_path):
    calls = {"n": 0}

    def progress(n: int) -> None:
        calls["n"] += n
        if calls["n"] >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        remove_object(
            MEDIA / "aac.mp4",
            Box(0, 0, 32, 32),
            tmp_path / "o.mp4",
            config=PER_FRAME,
            progress=progress,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["engine", "encoder"])
def test_interrupt_during_set_up_stops_and_joins_the_decode_and_encode_threads(
    tmp_path, monkeypatch, where
):
    # Ctrl-C can land after the decode thread has started and before frames flow (a batch's
    # next job starting). Both threads must be stopped and joined then too: a daemon thread left
    # inside an OpenCV call when the interpreter exits aborts the process (exit status -6, seen
    # once in `batch`'s Ctrl-C test) instead of exiting with 130.
    import threading

    from lama_video import pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "engine":
        monkeypatch.setattr(pipeline.PerFrameEngine, "process", interrupted)
    else:
        monkeypatch.setattr(pipeline._EncodeThread, "put", interrupted)
    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        remove_object(MEDIA / "aac.mp4", Box(0, 0, 32, 32), tmp_path / "o.mp4", config=PER_FRAME)
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not [n for n in left if n.startswith("lama-video")], left
    assert list(tmp_path.iterdir()) == []


def test_prefetch_reraises_producer_errors_and_stops():
    from lama_video.pipeline import _Prefetch

    def source():
        yield 1
        yield 2
        raise MaskError("boom")

    got = []
    with pytest.raises(MaskError, match="boom"):
        for x in _Prefetch(source(), 1, "t"):
            got.append(x)
    assert got == [1, 2]
    endless = _Prefetch(iter(range(10**9)), 2, "t")
    assert next(iter(endless)) == 0
    endless.close()  # returns: the producer notices the stop while blocked on a full queue
    assert not endless._thread.is_alive()


def test_encode_thread_reraises_writer_errors():
    from lama_video.pipeline import _EncodeThread

    written = []

    def write(x):
        if x == 3:
            raise EncodeError("disk full")
        written.append(x)

    enc = _EncodeThread(write, 2)
    with pytest.raises(EncodeError, match="disk full"):
        for i in range(100):
            enc.put(i)
        enc.finish()
    assert written == [0, 1, 2]
    enc.cancel()


def test_outputs_get_default_permissions_not_private_temp_ones(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        remove_object(MEDIA / "aac.mp4", Box(0, 0, 8, 8), tmp_path / "o.mp4", config=PER_FRAME)
        remove_object(MEDIA / "aac.mp4", Box(0, 0, 8, 8), tmp_path / "seq", config=PER_FRAME)
    finally:
        os.umask(old)
    assert (tmp_path / "o.mp4").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "seq").stat().st_mode & 0o777 == 0o755


def test_keyframe_masks_are_tracked_and_removed(tmp_path):
    from lama_video.video import write_png

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    with open_video(MEDIA / "aac.mp4") as r:
        originals = [f.rgb for f, _ in zip(r.frames(), range(10), strict=False)]
    for i, rgb in enumerate(originals):
        write_png(frames_dir / f"{i:05d}.png", rgb)
    key = np.zeros((240, 320), np.uint8)
    key[80:140, 120:200] = 255
    cv2.imwrite(str(tmp_path / "key.png"), key)
    ticks: list[int] = []
    res = remove_object(
        frames_dir,
        None,
        tmp_path / "out",
        config=PER_FRAME,
        keyframe_masks={0: tmp_path / "key.png"},
        track_progress=ticks.append,
    )
    assert res.frames == 10
    assert sum(ticks) == 10  # the tracking's own progress: one forward pass (keyframe 0)
    outs = [read_image(p) for p in list_image_files(tmp_path / "out")]
    assert len(outs) == 10
    # frame 0: exactly the keyframe's hole (dilated) changed; pixels far from it are untouched
    hole0 = dilate(key > 0, PER_FRAME.masks.dilate_px)
    assert np.array_equal(outs[0][~hole0], originals[0][~hole0])
    assert not np.array_equal(outs[0][key > 0], originals[0][key > 0])
    for out, orig in zip(outs, originals, strict=True):
        assert np.array_equal(out[:20], orig[:20])  # far from the object: bit-identical
    with pytest.raises(MaskError, match="not both"):
        remove_object(
            frames_dir,
            tmp_path / "key.png",
            tmp_path / "o2",
            config=PER_FRAME,
            keyframe_masks={0: tmp_path / "key.png"},
        )


def test_keyframe_tracking_runs_in_the_calling_thread_and_stops_on_ctrl_c(tmp_path):
    """The tracking runs before the removal, in the caller's thread (not inside the decode
    thread, where Ctrl-C would wait for the whole tracking to finish); interrupting it leaves no
    output."""
    import threading

    key = np.zeros((240, 320), np.uint8)
    key[80:140, 120:200] = 255
    cv2.imwrite(str(tmp_path / "key.png"), key)
    seen: list[int] = []

    def track_progress(n: int) -> None:
        assert threading.current_thread() is threading.main_thread()
        seen.append(n)
        if len(seen) == 5:
            raise KeyboardInterrupt

    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        remove_object(
            MEDIA / "aac.mp4",
            None,
            out,
            config=PER_FRAME,
            keyframe_masks={0: tmp_path / "key.png"},
            track_progress=track_progress,
        )
    assert len(seen) == 5  # stopped at once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.png"]


# ---------------------------------------------------------------- memory of the stream


def test_hole_stream_keeps_the_undilated_masks_packed_and_gives_them_back_exactly():
    from fractions import Fraction

    from lama_video.pipeline import HoleStream
    from lama_video.video import Frame

    rng = np.random.default_rng(3)
    masks = [rng.random((37, 53)) > 0.7 for _ in range(4)]  # odd sizes: the bits do not align
    frames = [Frame(i, i, Fraction(1, 25), np.zeros((37, 53, 3), np.uint8)) for i in range(4)]
    stream = HoleStream(frames, iter(masks), dilate_px=2)
    holes = [hole for _, hole in stream]
    for i in (2, 0, 3, 1):
        core = stream.pop_core(i)
        assert core.dtype == bool
        np.testing.assert_array_equal(core, masks[i])
        np.testing.assert_array_equal(holes[i], dilate(masks[i], 2))
    with pytest.raises(KeyError):
        stream.pop_core(0)


def test_queues_hold_fewer_large_frames():
    from lama_video.pipeline import (
        _ENCODE_BYTES,
        _ENCODE_DEPTH,
        _PREFETCH_BYTES,
        _PREFETCH_DEPTH,
        _queue_depth,
    )

    def prefetch(w: int, h: int) -> int:
        return _queue_depth(_PREFETCH_DEPTH, _PREFETCH_BYTES, 4 * w * h)

    def encode(w: int, h: int) -> int:
        return _queue_depth(_ENCODE_DEPTH, _ENCODE_BYTES, 7 * w * h)

    assert (prefetch(854, 480), encode(854, 480)) == (8, 46)  # 480p: most of a window queued
    assert (prefetch(1920, 1080), encode(1920, 1080)) == (6, 9)  # 8.3 and 14.5 MB items
    assert (prefetch(4000, 3000), encode(4000, 3000)) == (2, 2)  # never fewer than two


def test_heap_tuning_is_left_to_the_user_when_they_set_it(monkeypatch):
    import ctypes

    from lama_video import pipeline

    calls = []

    class FakeLibc:
        def mallopt(self, *args):
            calls.append(args)
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(pipeline, "_heap_tuned", False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    pipeline._tune_heap()
    assert calls == []
    monkeypatch.setattr(pipeline, "_heap_tuned", False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    pipeline._tune_heap()
    pipeline._tune_heap()  # once per process
    assert calls == [(-3, 1 << 20)]  # M_MMAP_THRESHOLD: arrays of 1 MB and more get mappings
