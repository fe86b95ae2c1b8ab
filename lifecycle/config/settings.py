"""Where the pipeline finds its files and stores, from the environment.

The Airflow layer (lifecycle_airflow.runtime) lets Airflow Variables and Connections override
these, so the same DAGs serve a user's own sources without code changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import SecretMissingError, WeakSecretError
from lifecycle.discovery import SubjectHasher

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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


# What a keyed-hash secret must be: a guessable one would let anybody recompute the hashes of
# known identifiers. secrets.token_urlsafe(32) (what scripts/env.sh generates) always passes.
SECRET_MIN_LENGTH = 32
SECRET_MIN_DISTINCT = 12
SECRET_MIN_CLASSES = 2  # of: lower-case letters, upper-case letters, digits, anything else
SECRET_MAX_SHARE_OF_ONE_CHARACTER = 0.25
_GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def secret_weakness(secret: str) -> tuple[str, str] | None:
    """The first rule ``secret`` breaks, as (rule, explanation), or None when it is strong enough.
    The explanation never contains the secret or any of its characters."""
    if len(secret) < SECRET_MIN_LENGTH:
        return "min_length", f"shorter than {SECRET_MIN_LENGTH} characters"
    counts: dict[str, int] = {}
    for ch in secret:
        counts[ch] = counts.get(ch, 0) + 1
    if len(counts) < SECRET_MIN_DISTINCT:
        return "min_distinct", f"fewer than {SECRET_MIN_DISTINCT} distinct characters"
    classes = {"lower" if ch.islower() else "upper" if ch.isupper() else "digit" if ch.isdigit() else "other"
               for ch in counts}
    if len(classes) < SECRET_MIN_CLASSES:
        return "min_classes", (f"fewer than {SECRET_MIN_CLASSES} kinds of character "
                               "(lower-case, upper-case, digits, others)")
    if max(counts.values()) > SECRET_MAX_SHARE_OF_ONE_CHARACTER * len(secret):
        return "repeated_character", "one character makes up more than a quarter of it"
    return None


def hasher_from_secret(secret: str | None) -> SubjectHasher:
    """The keyed hasher, refusing a missing or weak secret (the error names the rule, never the secret)."""
    where = f"the Airflow Variable 'lifecycle_hash_secret' or the environment variable {HASH_SECRET_ENV}"
    rules = (f"at least {SECRET_MIN_LENGTH} characters, {SECRET_MIN_DISTINCT} of them distinct, "
             f"{SECRET_MIN_CLASSES} kinds (lower-case, upper-case, digits, others), no character in more "
             f"than a quarter of it; generate one with {_GENERATE} and keep it out of the repository")
    if not secret:
        raise SecretMissingError(f"no keyed-hash secret: set {where} ({rules})")
    weakness = secret_weakness(secret)
    if weakness is not None:
        rule, problem = weakness
        raise WeakSecretError(f"the keyed-hash secret in {where} is too weak: {problem} ({rules})",
                              rule=rule)
    return SubjectHasher(secret.encode())
