"""Each subpackage's public surface, loaded on first use.

A subpackage names what other parts of the pipeline may use (``__all__``) and loads the module
that defines a name only when the name is asked for, so importing one subpackage never drags
in the others and the layers can refer to each other without import cycles.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def public_surface(package: str, modules: dict[str, tuple[str, ...]]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` for ``package``, from {module: names it defines}."""
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    return sorted(home), __getattr__
