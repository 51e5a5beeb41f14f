"""Tests of image mode: lama_video.modes.image and the ``lama-video image`` command (in-process)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from media_helpers import exif_jpeg
from typer.testing import CliRunner

from lama_video.cli import app
from lama_video.config import InpaintConfig, MaskConfig
from lama_video.engines import make_image_engine
from lama_video.engines.classical import ClassicalEngine
from lama_video.engines.exemplar import ExemplarEngine
from lama_video.engines.lama import Inpainter
from lama_video.errors import EncodeError, MaskError, VideoOpenError
from lama_video.model.weights import load_model
from lama_video.modes.image import find_pairs, inpaint_image, run_folder, write_image
from lama_video.video import read_image

PARITY = Path(__file__).parent / "fixtures" / "lama-parity"


def _imwrite(path: Path, rgb_or_grey: np.ndarray) -> Path:
    img = rgb_or_grey
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def _rgb(h: int = 30, w: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _mask(h: int = 30, w: int = 40) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[8:16, 10:22] = 255
    return m


def _big_lama_folder(root: Path) -> Path:
    """The tiny parity generator in big-lama.zip's layout: config.yaml + models/best.ckpt."""
    (root / "models").mkdir(parents=True)
    shutil.copy(PARITY / "config.yaml", root / "config.yaml")
    shutil.copy(PARITY / "tiny_generator.pt", root / "models" / "best.ckpt")
    return root


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# -------------------------------------------------------------------------------- parity


def test_parity_cli_single_image_reproduces_official_output(tmp_path: Path) -> None:
    model = _big_lama_folder(tmp_path / "big-lama")
    out = tmp_path / "out.png"
    res = CliRunner().invoke(
        app,
        [
            "image",
            str(PARITY / "input.png"),
            "--mask",
            str(PARITY / "input_mask.png"),
            "-o",
            str(out),
            "--model",
            str(model),
            "--engine",
            "lama",
            "--dilate",
            "0",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    got = _read_rgb(out).astype(int)
    expected = _read_rgb(PARITY / "expected_output.png").astype(int)
    assert got.shape == expected.shape == (61, 83, 3)
    assert np.abs(got - expected).max() <= 1
    # Outside the hole the input comes back bit for bit.
    hole = cv2.imread(str(PARITY / "input_mask.png"), cv2.IMREAD_UNCHANGED) > 0
    assert np.array_equal(got[~hole], _read_rgb(PARITY / "input.png")[~hole])


def test_parity_float_path(tmp_path: Path) -> None:
    loaded = load_model(_big_lama_folder(tmp_path / "big-lama"))
    inp = Inpainter(loaded, device="cpu")
    img = read_image(PARITY / "input.png")
    mask = cv2.imread(str(PARITY / "input_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) - {0, 255}  # anti-aliased
    out = inp.inpaint_tensor(
        torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255,
        torch.from_numpy(mask)[None, None].float() / 255,
    )
    expected = np.load(PARITY / "expected_output.npy")
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, atol=1e-5, rtol=0)


def test_parity_folder_mode_lama_layout(tmp_path: Path) -> None:
    indir = tmp_path / "in"
    indir.mkdir()
    shutil.copy(PARITY / "input.png", indir / "input.png")
    shutil.copy(PARITY / "input_mask.png", indir / "input_mask.png")
    outdir = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "image",
            str(indir),
            "-o",
            str(outdir),
            "--model",
            str(_big_lama_folder(tmp_path / "m")),
            "--dilate",
            "0",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in outdir.iterdir()) == ["input_mask.png"]  # LaMa's output name
    got = _read_rgb(outdir / "input_mask.png").astype(int)
    assert np.abs(got - _read_rgb(PARITY / "expected_output.png")).max() <= 1


def test_auto_engine_finds_cached_registry_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMA_VIDEO_HOME", str(tmp_path))
    eng = make_image_engine(InpaintConfig(engine="auto", model="big-lama", device="cpu"))
    assert isinstance(eng, ExemplarEngine)  # empty cache -> exemplar (PatchMatch) fallback
    _big_lama_folder(tmp_path / "big-lama")
    eng = make_image_engine(InpaintConfig(engine="auto", model="big-lama", device="cpu"))
    assert isinstance(eng, Inpainter) and eng.name == "lama"
    frames = read_image(PARITY / "input.png")[None]
    masks = (cv2.imread(str(PARITY / "input_mask.png"), cv2.IMREAD_UNCHANGED) > 0)[None]
    expected = _read_rgb(PARITY / "expected_output.png").astype(int)
    assert np.abs(eng.inpaint(frames, masks)[0].astype(int) - expected).max() <= 1


# --------------------------------------------------------------------------------- files


def test_read_image_conversions(tmp_path: Path) -> None:
    rgb = _rgb()
    assert np.array_equal(read_image(_imwrite(tmp_path / "rgb.png", rgb)), rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    assert np.array_equal(read_image(_imwrite(tmp_path / "rgba.png", rgba)), rgb)
    wide = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "16.png"), cv2.cvtColor(wide, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image(tmp_path / "16.png"), rgb)
    grey = rgb[..., 0].copy()
    got = read_image(_imwrite(tmp_path / "grey.png", grey))
    assert got.shape == (30, 40, 3) and all(np.array_equal(got[..., c], grey) for c in range(3))
    with pytest.raises(VideoOpenError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(VideoOpenError, match="not a readable image"):
        read_image(tmp_path / "text.png")


def test_write_image_is_atomic_and_checks_suffix(tmp_path: Path) -> None:
    rgb = _rgb(seed=4)
    write_image(tmp_path / "sub" / "a.png", rgb)
    assert np.array_equal(_read_rgb(tmp_path / "sub" / "a.png"), rgb)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"]  # no temp file left
    with pytest.raises(EncodeError, match=r"suffix '\.xyz'"):
        write_image(tmp_path / "a.xyz", rgb)


def test_find_pairs_follows_lamas_rule(tmp_path: Path) -> None:
    indir, outdir = tmp_path / "in", tmp_path / "out"
    for name in ("a.png", "sub/b.png", "c_2.png"):
        _imwrite(indir / name, _rgb())
    for name in ("a_mask.png", "a_mask002.png", "sub/b_mask.png", "c_2_mask1.png"):
        _imwrite(indir / name, _mask())
    pairs = find_pairs(indir, outdir)
    got = [
        (
            p.image.relative_to(indir).as_posix(),
            p.mask.relative_to(indir).as_posix(),
            p.output.relative_to(outdir).as_posix(),
        )
        for p in pairs
    ]
    assert got == [
        ("a.png", "a_mask.png", "a_mask.png"),
        ("a.png", "a_mask002.png", "a_mask002.png"),
        ("c_2.png", "c_2_mask1.png", "c_2_mask1.png"),
        ("sub/b.png", "sub/b_mask.png", "sub/b_mask.png"),
    ]
    _imwrite(indir / "d_mask.png", _mask())
    with pytest.raises(VideoOpenError, match=r"d\.png"):
        find_pairs(indir, outdir)
    jpg = tmp_path / "jpg"
    _imwrite(jpg / "x.jpg", _rgb())
    _imwrite(jpg / "x_mask.png", _mask())
    assert [p.image.name for p in find_pairs(jpg, outdir, img_suffix=".jpg")] == ["x.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoOpenError, match="no image/mask pairs"):
        find_pairs(tmp_path / "empty", outdir)


def test_inpaint_image_dilation_and_feathering() -> None:
    img, mask = _rgb(seed=2), _mask()
    eng = ClassicalEngine()
    core = mask > 0
    hard = inpaint_image(img, mask, eng, MaskConfig(dilate_px=0, feather_px=2))
    assert np.array_equal(hard[~core], img[~core])
    assert np.array_equal(hard[core], eng.inpaint(img[None], core[None])[0][core])
    soft = inpaint_image(img, mask, eng, MaskConfig(dilate_px=3, feather_px=2))
    grown = cv2.dilate(core.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    assert np.array_equal(soft[grown == 0], img[grown == 0])
    assert (soft[grown > 0] != img[grown > 0]).any()
    with pytest.raises(MaskError, match=r"mask is 39x30 but the image is 40x30"):
        inpaint_image(img, mask[:, :39], eng)
    assert np.array_equal(inpaint_image(img, np.zeros_like(mask), eng), img)


def test_run_folder_progress_and_existing_outputs(tmp_path: Path) -> None:
    indir, outdir = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        _imwrite(indir / f"im{i}.png", _rgb(seed=i))
        _imwrite(indir / f"im{i}_mask.png", _mask())
    ticks: list[int] = []
    pairs = run_folder(
        indir, outdir, ClassicalEngine(), MaskConfig(dilate_px=0), progress=ticks.append
    )
    assert len(pairs) == 3 and ticks == [1, 1, 1]
    before = (outdir / "im1_mask.png").read_bytes()
    (outdir / "im1_mask.png").write_bytes(b"old")
    with pytest.raises(EncodeError, match="--overwrite"):
        run_folder(indir, outdir, ClassicalEngine(), MaskConfig(dilate_px=0))
    assert (outdir / "im1_mask.png").read_bytes() == b"old"  # nothing written before the check
    run_folder(indir, outdir, ClassicalEngine(), MaskConfig(dilate_px=0), overwrite=True)
    assert (outdir / "im1_mask.png").read_bytes() == before


# ---------------------------------------------------------------------------------- CLI


def _pair(tmp_path: Path, h: int = 30, w: int = 40) -> tuple[Path, Path]:
    img = _imwrite(tmp_path / "img.png", _rgb(h, w))
    return img, _imwrite(tmp_path / "img_mask.png", _mask(h, w))


def test_cli_classical_engine_and_overwrite(tmp_path: Path) -> None:
    img, mask = _pair(tmp_path)
    out = tmp_path / "o" / "res.png"
    args = ["image", str(img), "--mask", str(mask), "-o", str(out), "--engine", "telea"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    result = _read_rgb(out)
    hole = _mask() > 0
    grown = cv2.dilate(hole.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
    assert np.array_equal(result[grown == 0], _rgb()[grown == 0])  # default dilate_px = 4
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "already exists; pass --overwrite" in res.output
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(("orientation", "turn"), [(6, -1), (8, 1), (3, 2), (1, 0)])
def test_a_phone_photo_is_read_upright(tmp_path: Path, orientation: int, turn: int) -> None:
    """A portrait photo is stored sideways with an EXIF orientation; it is read as viewers show
    it (and as OpenCV reads it), so a mask painted on it fits and the result is upright. It was
    read sideways: the upright mask was refused for its size, and the result came out turned."""
    yy, xx = np.mgrid[0:60, 0:100]
    stored = np.dstack([xx * 2.5, yy * 4, (xx + yy) * 1.5]).astype(
        np.uint8
    )  # smooth, not symmetric
    photo = exif_jpeg(tmp_path / "photo.jpg", stored[..., ::-1], orientation)
    upright = np.rot90(stored, k=turn)
    got = read_image(photo)
    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright).mean() < 4  # JPEG
    assert np.abs(got.astype(int) - cv2.imread(str(photo))[..., ::-1]).mean() < 3  # decoders
    h, w = upright.shape[:2]
    mask = _imwrite(tmp_path / "mask.png", _mask(h, w))
    out = tmp_path / "res.png"
    args = ["image", str(photo), "--mask", str(mask), "-o", str(out), "--engine", "telea"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    result = _read_rgb(out)
    far = cv2.dilate((_mask(h, w) > 0).view(np.uint8), np.ones((15, 15), np.uint8)) == 0
    assert result.shape == upright.shape
    assert np.abs(result[far].astype(int) - upright[far]).mean() < 4


def test_cli_auto_without_weights_falls_back_to_exemplar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMA_VIDEO_HOME", str(tmp_path / "cache"))
    img, mask = _pair(tmp_path)
    res = CliRunner().invoke(
        app, ["image", str(img), "--mask", str(mask), "-o", str(tmp_path / "o.png")]
    )
    assert res.exit_code == 0, res.output
    assert "lama-video weights download" in res.output and "(exemplar)" in res.output


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_image", "does not exist"),
        ("bad_image", "not a readable image"),
        ("size", "mask is 40x31 but the image is 40x30"),
        ("same_as_input", "is the input"),
        ("no_pairs", "no image/mask pairs found"),
        ("missing_model", "lama-video weights download"),
        ("bad_device", "expected auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_cli_errors_exit_1_with_one_line(tmp_path: Path, case: str, message: str) -> None:
    img, mask = _pair(tmp_path)
    out = str(tmp_path / "out.png")
    args = {
        "missing_image": ["image", str(tmp_path / "nope.png"), "--mask", str(mask), "-o", out],
        "bad_image": ["image", str(tmp_path / "bad.png"), "--mask", str(mask), "-o", out],
        "size": [
            "image",
            str(img),
            "--mask",
            str(_imwrite(tmp_path / "m31.png", _mask(31, 40))),
            "-o",
            out,
            "--engine",
            "telea",
        ],
        "same_as_input": [
            "image",
            str(img),
            "--mask",
            str(mask),
            "-o",
            str(img),
            "--overwrite",
            "--engine",
            "telea",
        ],
        "no_pairs": ["image", str((tmp_path / "empty").resolve()), "-o", str(tmp_path / "od")],
        "missing_model": [
            "image",
            str(img),
            "--mask",
            str(mask),
            "-o",
            out,
            "--engine",
            "lama",
            "--model",
            str(tmp_path / "nope.ckpt"),
        ],
        # --device gpu on the command line is a usage error (exit 2); in a config file, exit 1
        "bad_device": [
            "image",
            str(img),
            "--mask",
            str(mask),
            "-o",
            out,
            "--config",
            str(tmp_path / "gpu.yaml"),
        ],
    }[case]
    (tmp_path / "gpu.yaml").write_text("inpaint:\n  device: gpu\n")
    (tmp_path / "bad.png").write_text("garbage")
    (tmp_path / "empty").mkdir()
    before = img.read_bytes()
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert message in res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1
    assert "Traceback" not in res.output
    assert img.read_bytes() == before
    assert not Path(out).exists()


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    img, mask = _pair(tmp_path)
    res = CliRunner().invoke(app, ["image", str(img), "-o", str(tmp_path / "o.png")])
    assert res.exit_code == 2 and "needs --mask" in res.output
    res = CliRunner().invoke(
        app, ["image", str(tmp_path), "--mask", str(mask), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "only for a single image" in res.output
