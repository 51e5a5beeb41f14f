"""Regenerate configs/default.yaml from lama_video/config.py (values and each field's comment).

Run after adding or changing a config field: ``python tools/gen_default_yaml.py``.
tests/test_config.py checks that the file's values equal ``RunConfig()``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import yaml

from lama_video.config import RunConfig


def render() -> str:
    cfg = RunConfig()
    lines = [
        "# lama-video default configuration. Mirrors lama_video/config.py RunConfig() exactly "
        "(a test checks).",
        "# Copy it, keep only the keys you change, pass it with --config FILE. Flags override it.",
        "",
    ]
    for sec in dataclasses.fields(RunConfig):
        section = getattr(cfg, sec.name)
        cls = type(section)
        lines.append(f"{sec.name}:  # {(inspect.getdoc(cls) or '').splitlines()[0]}")
        src = inspect.getsource(cls)
        for f in dataclasses.fields(cls):
            # The whole comment block above the field, its lines joined.
            m = re.search(rf"((?:^[ \t]+#.*\n)+)[ \t]+{f.name}:", src, re.M)
            comment = ""
            if m:
                comment = " ".join(
                    line.strip().removeprefix("#").strip() for line in m.group(1).splitlines()
                )
            value = yaml.safe_dump(getattr(section, f.name)).strip()
            value = value.removesuffix("...").strip()
            lines.append(f"  {f.name}: {value}  # {comment}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    out.write_text(render())
    print(f"wrote {out}")
