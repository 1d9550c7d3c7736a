"""Every library the hub imports at run time is a runtime dependency, not only a test extra (#12 item 19)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _top_level_imports(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_every_runtime_import_is_a_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {Requirement(r).name.lower().replace("_", "-") for r in project["dependencies"]}
    dists = packages_distributions()
    missing = {}
    for module in sorted(_top_level_imports(ROOT / "dispatch") | _top_level_imports(ROOT / "protocols")):
        if module in sys.stdlib_module_names or module in ("dispatch", "protocols"):
            continue
        owners = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not owners & declared:
            missing[module] = sorted(owners) or ["(not installed)"]
    assert not missing, f"imported by the hub but not in [project].dependencies: {missing}"
