"""Where the pipeline finds its files and stores, from the environment.

The Airflow layer (lifecycle_airflow.runtime) lets Airflow Variables and Connections override
these, so the same DAGs serve a user's own sources without code changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import SecretMissingError
from lifecycle.identifiers import SubjectHasher

PROJECT_ROOT = Path(__file__).resolve().parents[1]
HASH_SECRET_ENV = "LIFECYCLE_HASH_SECRET"


@dataclass(frozen=True)
class Settings:
    policy_path: Path
    catalog_path: Path
    report_dir: Path
    suite_dir: Path
    extract_dir: Path
    mechanisms_path: Path

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("LIFECYCLE_HOME", PROJECT_ROOT / ".lifecycle"))
        return cls(
            policy_path=Path(os.environ.get("LIFECYCLE_POLICY", PROJECT_ROOT / "config" / "policy.yaml")),
            catalog_path=Path(os.environ.get("LIFECYCLE_CATALOG", PROJECT_ROOT / "config" / "catalog.yaml")),
            report_dir=Path(os.environ.get("LIFECYCLE_REPORT_DIR", home / "reports")),
            suite_dir=Path(os.environ.get("LIFECYCLE_EXPECTATIONS_DIR", PROJECT_ROOT / "expectations")),
            # Access extracts hold personal data: a location of their own, owner-only.
            extract_dir=Path(os.environ.get("LIFECYCLE_EXTRACT_DIR", home / "protected" / "extracts")),
            mechanisms_path=Path(os.environ.get("LIFECYCLE_TRANSFER_MECHANISMS",
                                                PROJECT_ROOT / "config" / "transfer_mechanisms.yaml")),
        )


def hasher_from_secret(secret: str | None) -> SubjectHasher:
    if not secret:
        raise SecretMissingError(
            f"no keyed-hash secret: set the Airflow Variable 'lifecycle_hash_secret' or the environment "
            f"variable {HASH_SECRET_ENV} (at least 16 characters; keep it out of the repository)"
        )
    return SubjectHasher(secret.encode())
