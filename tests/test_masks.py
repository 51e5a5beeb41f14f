from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from media_helpers import encode_frames

from lama_video.config import MaskConfig
from lama_video.errors import MaskError
from lama_video.masks import Box, dilate, load_masks, read_mask_image


def _write(path, arr):
    assert cv2.imwrite(str(path), arr)
    return path


def _ring_mask(h=24, w=32, y=5, x=7):
    m = np.zeros((h, w), np.uint8)
    m[y : y + 6, x : x + 8] = 255
    return m


def test_folder_matched_by_number_not_lexicographic(tmp_path):
    # names without zero padding: lexicographic order would put 10 before 2
    for i in range(12):
        _write(tmp_path / f"mask_{i + 1}.png", _ring_mask(x=i))
    track = load_masks(tmp_path, width=32, height=24, n_frames=12)
    got = list(track.masks())
    assert len(got) == 12 and track.count == 12
    for i, m in enumerate(got):
        assert m[5, i] and not m[5, i + 8]


def test_folder_count_mismatch_names_both_numbers(tmp_path):
    for i in range(5):
        _write(tmp_path / f"{i:05d}.png", _ring_mask())
    with pytest.raises(MaskError, match=r"has 5 masks but the video has 7 frames"):
        load_masks(tmp_path, width=32, height=24, n_frames=7)


def test_folder_gap_is_an_error(tmp_path):
    for i in (0, 1, 3):
        _write(tmp_path / f"{i:05d}.png", _ring_mask())
    with pytest.raises(MaskError, match=r"skips frame number"):
        load_masks(tmp_path, width=32, height=24)


def test_empty_folder_and_unreadable_mask(tmp_path):
    with pytest.raises(MaskError, match="holds no mask images"):
        load_masks(tmp_path, width=32, height=24)
    (tmp_path / "00000.png").write_bytes(b"not a png")
    with pytest.raises(MaskError, match="not a readable image"):
        list(load_masks(tmp_path, width=32, height=24).masks())


def test_size_mismatch_same_aspect_is_resized_nearest(tmp_path, caplog):
    m = np.zeros((12, 16), np.uint8)
    m[2:4, 3:5] = 255
    p = _write(tmp_path / "m.png", m)
    track = load_masks(p, width=32, height=24)
    out = next(track.masks())
    assert out.shape == (24, 32)
    assert out.sum() == 16 and out[4:8, 6:10].all()  # nearest neighbour: exact 2x blocks
    assert "resized" in caplog.text


def test_size_mismatch_other_aspect_names_both_sizes(tmp_path):
    p = _write(tmp_path / "m.png", _ring_mask(h=20, w=32))
    with pytest.raises(MaskError, match=r"is 32x20 but the video is 32x24"):
        load_masks(p, width=32, height=24)


def test_threshold_rules(tmp_path):
    m = np.zeros((24, 32), np.uint8)
    m[0, 0] = 1  # a lone value-1 pixel counts in a lossless mask (LaMa's > 0 rule)
    m[5:10, 5:10] = 255
    track = load_masks(_write(tmp_path / "a.png", m), width=32, height=24)
    assert next(track.masks())[0, 0]
    jpg = m.copy()
    jpg[0, 0] = 40  # JPEG noise must not become a hole
    p = _write(tmp_path / "a.jpg", jpg)
    out = next(load_masks(p, width=32, height=24).masks())
    assert not out[0, 0] and out[6:9, 6:9].all()
    strict = MaskConfig(threshold=200)
    assert not next(load_masks(tmp_path / "a.png", width=32, height=24, cfg=strict).masks())[0, 0]


def test_rgba_uses_alpha_when_colour_blank(tmp_path):
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[3:6, 3:6, 3] = 255
    m = read_mask_image(_write(tmp_path / "a.png", rgba))
    assert m[4, 4] == 255 and m.sum() == 9 * 255


@pytest.mark.parametrize("under", [(255, 255, 255), (0, 0, 0), (90, 200, 30)])
@pytest.mark.parametrize("paint", [(255, 0, 0), (0, 0, 0), (255, 255, 255)])
def test_a_layer_over_transparency_is_read_by_what_is_painted(tmp_path, under, paint):
    """Editors keep white (or any colour) in transparent pixels; the mask is what is visible. Red
    strokes over transparent white were read as a hole over the whole frame."""
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., :3] = under
    rgba[3:6, 3:9, :3] = paint
    rgba[3:6, 3:9, 3] = 255
    m = read_mask_image(_write(tmp_path / "a.png", rgba[..., [2, 1, 0, 3]]))
    assert (m > 0).sum() == 18 and (m[3:6, 3:9] == 255).all()


def test_an_opaque_rgba_mask_is_read_by_its_colour(tmp_path):
    rgba = np.full((24, 32, 4), 255, np.uint8)
    rgba[..., :3] = 0
    rgba[10:12, 10:12, :3] = 255
    m = read_mask_image(_write(tmp_path / "b.png", rgba))
    assert m[11, 11] == 255 and (m > 0).sum() == 4


def test_static_empty_mask_is_an_error(tmp_path):
    p = _write(tmp_path / "empty.png", np.zeros((24, 32), np.uint8))
    with pytest.raises(MaskError, match="is empty"):
        load_masks(p, width=32, height=24)


def test_box_parse_and_mask():
    b = Box.parse("4, 2, 10, 5")
    m = b.to_mask(32, 24)
    assert m.sum() == 50 and m[2, 4] and not m[7, 4]
    with pytest.raises(MaskError, match="expected four integers"):
        Box.parse("1,2,3")
    with pytest.raises(MaskError, match="outside"):
        Box.parse("40,0,5,5").to_mask(32, 24)


def test_missing_source(tmp_path):
    with pytest.raises(MaskError, match="does not exist"):
        load_masks(tmp_path / "nope.png", width=32, height=24)


def test_dilate_grows_by_radius():
    m = np.zeros((21, 21), bool)
    m[10, 10] = True
    d = dilate(m, 3)
    assert d[10, 7] and d[10, 13] and not d[10, 6] and d.sum() > 20
    assert dilate(m, 0) is m


def test_keyframes_from_folder(tmp_path):
    from lama_video.masks import keyframes_from_folder

    for i in (30, 4):
        _write(tmp_path / f"key_{i}.png", _ring_mask())
    assert list(keyframes_from_folder(tmp_path)) == [4, 30]
    _write(tmp_path / "nonumber.png", _ring_mask())
    with pytest.raises(MaskError, match="has no frame number"):
        keyframes_from_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MaskError, match=r"folder .* holds no images"):
        keyframes_from_folder(tmp_path / "empty")
    with pytest.raises(MaskError, match="must be a folder"):
        keyframes_from_folder(tmp_path / "key_4.png")


# ------------------------------------------------------------------------- starting at a frame


def _moving(i, h=48, w=64):
    m = np.zeros((h, w), np.uint8)
    m[10:20, 2 + i : 12 + i] = 255
    return m


def _mask_video(path, n=30, gop=6):
    """A mask video with a keyframe every ``gop`` frames and B-frames (something to seek in)."""
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        st.options = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "2",
            "crf": "12",
        }
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(np.repeat(_moving(i)[..., None], 3, 2), format="rgb24")
            vf.pts = i
            for pkt in st.encode(vf):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


def test_folder_masks_start_at_a_frame(tmp_path):
    for i in range(12):  # no zero padding: frame k is the k-th by number, not by name
        _write(tmp_path / f"m{i}.png", _moving(i))
    track = load_masks(tmp_path, width=64, height=48, n_frames=12)
    full = list(track.masks())
    for k in (0, 1, 7, 11, 12, 15):
        got = list(track.masks(start=k))
        assert len(got) == len(full[k:])
        assert all(np.array_equal(a, b) for a, b in zip(got, full[k:], strict=True))
    fifth = next(track.masks(start=5))  # the box of file m5.png: columns 7..16
    assert fifth[12, 7] and not fifth[12, 6]
    with pytest.raises(ValueError, match="start=-1"):
        next(track.masks(start=-1))


def test_static_masks_ignore_start(tmp_path):
    track = load_masks(Box(1, 2, 3, 4), width=32, height=24)
    assert np.array_equal(next(track.masks(start=1000)), Box(1, 2, 3, 4).to_mask(32, 24))
    track = load_masks(_write(tmp_path / "m.png", _ring_mask()), width=32, height=24)
    assert np.array_equal(next(track.masks(start=7)), next(track.masks()))


def test_mask_video_starts_at_a_frame_by_seeking(tmp_path, monkeypatch):
    from lama_video.video import VideoReader

    path = _mask_video(tmp_path / "masks.mp4")
    track = load_masks(path, width=64, height=48, n_frames=30)
    full = list(track.masks())
    assert len(full) == 30 and full[9][12, 11 + 2] and not full[9][12, 10]
    decoded = {"n": 0}
    original = VideoReader._decode_packet

    def counting(reader, packet):
        out = original(reader, packet)
        decoded["n"] += len(out)
        return out

    monkeypatch.setattr(VideoReader, "_decode_packet", counting)
    for k in (1, 6, 7, 20, 29, 30):
        decoded["n"] = 0
        got = list(track.masks(start=k))
        assert len(got) == 30 - k
        assert all(np.array_equal(a, b) for a, b in zip(got, full[k:], strict=True))
        # At most one GOP (6) before frame k, plus the first frame that opening the video decodes.
        assert decoded["n"] <= len(got) + 5 + 1


def test_brightest_channel_equals_the_max_over_channels():
    from lama_video.masks import brightest_channel

    rng = np.random.default_rng(0)
    for shape in ((7, 5, 3), (16, 9, 4), (1, 1, 3)):
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        out = brightest_channel(img)
        assert out.dtype == np.uint8 and out.shape == shape[:2]
        assert np.array_equal(out, img[..., :3].max(axis=2))


def _matte_video(path, codec, pix_fmt, frames):
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        pictures = (
            av.VideoFrame.from_ndarray(f, format="rgba").reformat(format=pix_fmt) for f in frames
        )
        encode_frames(out, s, pictures)
    return path


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "ext"), [("qtrle", "argb", "mov"), ("ffv1", "yuva420p", "mkv")]
)
def test_a_mask_video_with_alpha_is_read_by_its_alpha(tmp_path, codec, pix_fmt, ext):
    """A matte exported with its alpha (After Effects' RGB + Alpha: red strokes over transparent
    white) was read by colour, a hole over the whole frame; a frame with nothing painted is
    empty, and an opaque frame is read by its colour."""
    h, w = 48, 64
    frames = []
    for i in range(3):
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = 255  # transparent white
        if i < 2:
            rgba[10:20, 10 + 10 * i : 30 + 10 * i] = (255, 0, 0, 255)
        frames.append(rgba)
    path = _matte_video(tmp_path / f"matte.{ext}", codec, pix_fmt, frames)
    got = list(load_masks(path, width=w, height=h).masks())
    assert [int(m.sum()) for m in got] == [200, 200, 0]
    assert got[1][10:20, 20:40].all()
    opaque = np.zeros((h, w, 4), np.uint8)
    opaque[..., 3] = 255
    opaque[5:9, 5:9, :3] = 255  # white on black, alpha opaque all over: the colour is the mask
    path = _matte_video(tmp_path / f"opaque.{ext}", codec, pix_fmt, [opaque] * 2)
    assert [int(m.sum()) for m in load_masks(path, width=w, height=h).masks()] == [16, 16]
