"""Loading of the declarative YAML files, with errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lifecycle.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, error: type[ConfigError]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise error(str(path), "(file)", f"cannot be read: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise error(str(path), where, f"is not valid YAML: {getattr(e, 'problem', e)}") from e
    if not isinstance(data, dict):
        raise error(str(path), "(top level)", "must be a mapping of keys to values")
    return data


def parse_model(model: type[M], data: dict[str, Any], path: Path, error: type[ConfigError]) -> M:
    """Validate ``data`` against a pydantic model; report the first problem by key path."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise error(str(path), key, first["msg"]) from e
