"""Erasure certificates and access extracts as JSON and readable HTML.

A certificate holds the request reference, counts per source and action, the reasons for
anything kept, and the verification result: no personal data. An access extract is the one
document that holds personal data; it is written only where the operator configured, with
owner-only permissions.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from lifecycle.reporting import ReportPaths, safe_file_name

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _render(template: str, **context: Any) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    return env.get_template(template).render(**context)


def write_certificate(certificate: dict[str, Any], directory: Path) -> ReportPaths:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{certificate.get('request_type') or 'erasure'}-certificate-{safe_file_name(certificate['reference'])}"
    paths = ReportPaths(directory / f"{stem}.json", directory / f"{stem}.html")
    paths.json.write_text(json.dumps(certificate, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    template = "review.html.j2" if certificate.get("request_type") == "name_review" else "certificate.html.j2"
    paths.html.write_text(_render(template, c=certificate), encoding="utf-8")
    return paths


def write_extract(extract: dict[str, Any], directory: Path) -> ReportPaths:
    """Owner-only folder and files: this document holds the person's data."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    stem = f"access-extract-{safe_file_name(extract['reference'])}"
    paths = ReportPaths(directory / f"{stem}.json", directory / f"{stem}.html")
    for path, content in ((paths.json, json.dumps(extract, indent=2, ensure_ascii=False, default=str)),
                          (paths.html, _render("extract.html.j2", e=extract))):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
    return paths


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
