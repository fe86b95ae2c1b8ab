"""The domain package's layout: subpackages by concern, each with a public surface, and no
private name imported from one subpackage into another."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lifecycle"
SUBPACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from lifecycle... import name`` in ``path``."""
    tree = ast.parse(path.read_text())
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lifecycle")
            for alias in node.names]


def _subpackage(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def test_the_package_is_grouped_by_concern() -> None:
    assert SUBPACKAGES == ["config", "discovery", "enforcement", "reporting", "rights", "stores", "tagstore"]
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top_level == ["__init__.py", "errors.py", "faults.py", "surface.py"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_name_a_subpackage_offers_exists(name: str) -> None:
    package = importlib.import_module(f"lifecycle.{name}")
    assert package.__all__, name
    for public in package.__all__:
        assert not public.startswith("_"), (name, public)
        assert getattr(package, public) is not None, (name, public)
    with pytest.raises(AttributeError, match="no attribute"):
        getattr(package, "no_such_name")
    # A submodule, once imported, would shadow a public name it shares.
    modules = {p.stem for p in (PACKAGE / name).glob("*.py")}
    assert not set(package.__all__) & modules, name


def test_no_private_name_crosses_a_subpackage_boundary() -> None:
    crossings = []
    for path in PACKAGE.rglob("*.py"):
        own = _subpackage(path)
        for module, name in _imports(path):
            parts = module.split(".")
            other = parts[1] if len(parts) > 1 else None
            if other in SUBPACKAGES and other != own:
                surface = importlib.import_module(f"lifecycle.{other}").__all__
                is_submodule = (PACKAGE / other / f"{name}.py").exists()
                if name.startswith("_") or not (name in surface or is_submodule):
                    crossings.append(f"{path.relative_to(ROOT)}: {module}.{name}")
    assert crossings == []


def test_importing_one_subpackage_does_not_load_the_others() -> None:
    code = ("import sys, lifecycle.config; "
            "sys.exit(sorted({m.split('.')[1] for m in sys.modules if m.startswith('lifecycle.')}) != ['config', 'surface'])")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_demo_data_and_corpus_are_not_in_the_installed_package() -> None:
    assert not list(PACKAGE.rglob("demo*.py")) and not list(PACKAGE.rglob("corpus*.py"))
    assert (ROOT / "demo" / "company.py").exists() and (ROOT / "demo" / "corpus.py").exists()
