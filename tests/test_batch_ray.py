"""Batch jobs on a local Ray instance: windows of a long video as tasks, killed workers retried.

Needs the ``ray`` extra (CI installs it). One Ray instance (2 CPUs) serves the whole module.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

ray = pytest.importorskip("ray")

import batch_helpers  # noqa: E402
from batch_helpers import CrashOnce, moving_masks, telea  # noqa: E402

from lama_video.batching import MANIFEST_NAME, batch  # noqa: E402
from lama_video.config import RunConfig  # noqa: E402
from lama_video.masks import Box  # noqa: E402
from lama_video.pipeline import remove_object  # noqa: E402
from lama_video.video import list_image_files, read_image  # noqa: E402

MEDIA = Path(__file__).parent / "fixtures" / "media"
BASE = {"encode": {"preset": "ultrafast"}, "inpaint": {"engine": "telea"}}
TEMPORAL = RunConfig().replace(
    {
        **BASE,
        "temporal": {
            "window_frames": 12,
            "overlap_frames": 4,
            "keyframe_interval": 4,
            "flow_preset": "ultrafast",
            "flow_max_side_px": 96,
            "smoothing_radius": 1,
            "max_propagation_frames": 6,
        },
    }
)
PER_FRAME = RunConfig().replace({**BASE, "temporal": {"enabled": False}})


@pytest.fixture(scope="module")
def local_ray():
    # The workers unpickle the test's engine factories by value (tests/ is not on their path).
    ray.cloudpickle.register_pickle_by_value(batch_helpers)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(batch_helpers)


def _decode(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as c:
        frames = [(f.to_ndarray(format="rgb24"), f.pts) for f in c.decode(video=0)]
    return [f for f, _ in frames], [p for _, p in frames]


def _audio(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.dts is not None]


def test_long_video_as_windows_on_ray_equals_one_process(local_ray, tmp_path):
    masks = moving_masks(tmp_path / "aac_masks")
    box = Box(200, 100, 120, 90)
    (tmp_path / "jobs.yaml").write_text(
        f"jobs:\n"
        f"  - {{input: {MEDIA / 'aac.mp4'}, mask: {masks}, output: aac_frames}}\n"
        f"  - {{input: {MEDIA / 'vfr_aac.mp4'}, box: '200,100,120,90', output: vfr.mp4}}\n"
    )
    out = tmp_path / "out"
    rep = batch(
        tmp_path / "jobs.yaml",
        out,
        config=TEMPORAL,
        ray_address="local",
        split_frames=16,
        engine_factory=telea,
    )
    assert rep.ok, rep.table()
    assert [(r.status, r.tasks, r.frames) for r in rep.results] == [
        ("done", 3, 45),
        ("done", 3, 42),
    ]
    assert not (out / ".lama-video-scratch").exists() or not any(
        (out / ".lama-video-scratch").iterdir()
    )

    # PNG sequence: bit for bit the one-process result.
    remove_object(
        MEDIA / "aac.mp4",
        masks,
        tmp_path / "single_frames",
        config=TEMPORAL,
        image_engine=telea(TEMPORAL),
    )
    a, b = list_image_files(tmp_path / "single_frames"), list_image_files(out / "aac_frames")
    assert len(a) == len(b) == 45
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(read_image(x), read_image(y)), x.name

    # Video: the same frames encoded once with the source's timestamps and audio.
    single = tmp_path / "single.mp4"
    remove_object(MEDIA / "vfr_aac.mp4", box, single, config=TEMPORAL, image_engine=telea(TEMPORAL))
    (fa, pa), (fb, pb) = _decode(single), _decode(out / "vfr.mp4")
    _, p_src = _decode(MEDIA / "vfr_aac.mp4")
    assert len(fb) == 42 and pb == pa == p_src  # variable frame rate kept
    worst = max(int(np.abs(x.astype(np.int16) - y).max()) for x, y in zip(fa, fb, strict=True))
    assert worst <= 2  # the same encoder on the same frames (measured: 0)
    assert _audio(out / "vfr.mp4") == _audio(MEDIA / "vfr_aac.mp4") != []
    with av.open(str(out / "vfr.mp4")) as c, av.open(str(single)) as d:
        assert c.duration == d.duration


def test_killed_worker_task_is_retried(local_ray, tmp_path):
    marker = tmp_path / "crashed"
    src = tmp_path / "src"
    src.mkdir()
    (src / "clip.mp4").write_bytes((MEDIA / "aac.mp4").read_bytes())
    m = np.zeros((240, 320), np.uint8)
    m[60:120, 100:180] = 255
    cv2.imwrite(str(src / "clip_mask.png"), m)
    out = tmp_path / "out"
    rep = batch(
        src,
        out,
        config=PER_FRAME,
        ray_address="local",
        ray_retries=2,
        split_frames=16,
        engine_factory=CrashOnce(marker),
    )
    assert marker.exists()  # one task's worker process died ...
    assert rep.ok and [(r.status, r.tasks, r.frames) for r in rep.results] == [("done", 3, 45)]
    ref = remove_object(
        src / "clip.mp4",
        src / "clip_mask.png",
        tmp_path / "ref.mp4",
        config=PER_FRAME,
        image_engine=telea(PER_FRAME),
    )
    (fa, pa), (fb, pb) = _decode(ref.output), _decode(out / "clip.mp4")
    assert pa == pb and all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    manifest = json.loads((out / MANIFEST_NAME).read_text())["jobs"]
    assert manifest["clip.mp4"]["status"] == "done"

    # ... and with no retries left, the loss is a failed job, reported, not a crash.
    marker.unlink()
    (src / "other.mp4").write_bytes((MEDIA / "aac.mp4").read_bytes())
    cv2.imwrite(str(src / "other_mask.png"), m)
    rep = batch(
        src,
        out,
        config=PER_FRAME,
        ray_address="local",
        ray_retries=0,
        engine_factory=CrashOnce(marker),
    )
    status = {r.name: (r.status, r.error) for r in rep.results}
    assert status["clip.mp4"][0] == "skipped"
    assert status["other.mp4"][0] == "failed" and "Ray worker died" in status["other.mp4"][1]
    assert not rep.ok


def _short_gop(frames: list[np.ndarray], pts: list[int], time_base, dst: Path, gop: int) -> Path:
    """Encode ``frames`` at ``pts`` with a keyframe every ``gop`` frames and 2 B-frames."""
    with av.open(str(dst), "w", options={"video_track_timescale": str(time_base.denominator)}) as o:
        st = o.add_stream("libx264", rate=30)
        st.height, st.width = frames[0].shape[:2]
        st.pix_fmt, st.time_base, st.codec_context.time_base = "yuv420p", time_base, time_base
        st.options = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "2",
            "crf": "12",
            "preset": "fast",
        }
        for rgb, p in zip(frames, pts, strict=True):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = p, time_base
            for pkt in st.encode(vf):
                o.mux(pkt)
        for pkt in st.encode(None):
            o.mux(pkt)
    return dst


def test_parts_seek_to_their_range_and_join_bit_identical(tmp_path, monkeypatch):
    # Parts run in this process (run_part and the Joiner are what the Ray actors and the driver
    # call): a clip and a mask video with a keyframe every 5 frames, so later parts really seek.
    from lama_video.batching import Job
    from lama_video.batching.ray import Joiner, run_part, split_job
    from lama_video.video import VideoReader

    with av.open(str(MEDIA / "aac.mp4")) as c:
        tb = c.streams.video[0].time_base
    rgb, pts = _decode(MEDIA / "aac.mp4")
    clip = _short_gop(rgb, pts, tb, tmp_path / "gop.mp4", gop=5)
    masks = [cv2.imread(str(p)) for p in list_image_files(moving_masks(tmp_path / "m"))]
    mask_video = _short_gop(masks, list(range(45)), Fraction(1, 30), tmp_path / "m.mp4", gop=5)
    job = Job(
        name="gop_frames",
        input=clip,
        output=tmp_path / "split_frames",
        mask=mask_video,
        config=TEMPORAL,
    )
    parts = split_job(job, 16)
    assert [(p.start, p.stop) for p in parts] == [(0, 20), (16, 36), (32, 45)]

    decoded: dict[str, int] = {}
    original = VideoReader._decode_packet

    def counting(reader, packet):
        out = original(reader, packet)
        decoded[reader.path.name] = decoded.get(reader.path.name, 0) + len(out)
        return out

    monkeypatch.setattr(VideoReader, "_decode_packet", counting)
    joiner = Joiner(job, parts, tmp_path / "scratch")
    for part in parts:
        decoded.clear()
        res = run_part(job, part, tmp_path / "scratch", telea)
        assert [i for i, _, _ in res.frames] == list(range(part.start, part.stop))
        # Its frames, up to 4 before them (keyframes every 5), the one at `stop` that ends the
        # part, the first frame decoded when the file is opened, and 2 in the decoder's pipeline.
        # Decoding from frame 0 would be `stop` + 1 or more: 37 and 46 for the later parts.
        most = part.stop - part.start + 4 + 1 + 1 + 2
        assert decoded["gop.mp4"] <= most and decoded["m.mp4"] <= most, (part, decoded)
        joiner.add(res)
    single = remove_object(
        clip, mask_video, tmp_path / "single_frames", config=TEMPORAL, image_engine=telea(TEMPORAL)
    )
    a, b = list_image_files(single.output), list_image_files(tmp_path / "split_frames")
    assert len(a) == len(b) == 45
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(read_image(x), read_image(y)), x.name
