"""The README's tree of the package stays true: every module it names exists, every module is named."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "src" / "aoai_gateway"


def readme_tree() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Architecture") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def named_in_tree() -> set[str]:
    return set(re.findall(r"\b([a-z_]+(?:\.py|/))", readme_tree()))


def test_every_top_level_module_and_package_is_in_the_tree() -> None:
    named = named_in_tree()
    for entry in PACKAGE.iterdir():
        if entry.name.startswith("__") or entry.name == "py.typed":
            continue
        name = entry.name + "/" if entry.is_dir() else entry.name
        assert name in named, f"{name} is missing from the README's architecture tree"


def test_every_module_the_tree_names_exists() -> None:
    existing = {p.name for p in PACKAGE.rglob("*.py")} | {p.name + "/" for p in PACKAGE.rglob("*") if p.is_dir()}
    existing |= {"src/", "tests/", "bench/", "attacks/", "aoai_gateway/"}
    for name in named_in_tree():
        assert name in existing, f"the tree names {name}, which is gone"


def test_architecture_guide_names_real_modules() -> None:
    guide = (ROOT / "ARCHITECTURE.md").read_text()
    for path in re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", guide):
        assert (PACKAGE / path).exists() or (ROOT / path).exists(), f"ARCHITECTURE.md names {path}, which is gone"
