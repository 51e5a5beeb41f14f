from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lama_video.config import RunConfig, load_config
from lama_video.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_mirrors_dataclasses():
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert data == RunConfig().to_dict()


def test_default_yaml_is_what_the_generator_writes():
    # Values and every field's comment: regenerate with python tools/gen_default_yaml.py.
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_default_yaml.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (ROOT / "configs" / "default.yaml").read_text() == gen.render()


def test_presets_load():
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        assert isinstance(load_config(p), RunConfig)


def test_precedence_defaults_yaml_flags(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("masks: {dilate_px: 9}\nencode: {crf: 23, preset: fast}\n")
    cfg = load_config(f, {"encode": {"crf": 30, "preset": None}})
    assert cfg.masks.dilate_px == 9  # yaml over default
    assert cfg.encode.crf == 30  # flag over yaml
    assert cfg.encode.preset == "fast"  # None flag does not override
    assert cfg.encode.codec == RunConfig().encode.codec


def test_unknown_key_suggests_closest(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("masks: {dilate: 3}\n")
    with pytest.raises(ConfigError, match=r"dilate.*did you mean 'dilate_px'"):
        load_config(f)
    f.write_text("mask: {dilate_px: 3}\n")
    with pytest.raises(ConfigError, match="did you mean 'masks'"):
        load_config(f)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"inpaint": {"precision": "fp8"}}, "expected one of auto, fp32, fp16, bf16"),
        ({"masks": {"dilate_px": -1}}, r"expected a value in \[0, 256\]"),
        ({"encode": {"crf": "high"}}, "expected a value of type int"),
        ({"inpaint": {"device": "gpu"}}, "expected auto, cpu, cuda, cuda:N or mps"),
        ({"temporal": {"window_frames": 10, "overlap_frames": 10}}, "must be smaller"),
    ],
)
def test_invalid_values_name_key_and_range(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        RunConfig().replace(overrides)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("masks: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_config_is_frozen():
    cfg = RunConfig()
    with pytest.raises(AttributeError):
        cfg.masks.dilate_px = 3  # type: ignore[misc]
