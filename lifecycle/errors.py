"""One exception hierarchy; every message names its culprit (file, key, source, column)."""

from __future__ import annotations


class LifecycleError(Exception):
    """Base of every error the pipeline raises on purpose."""


class ConfigError(LifecycleError):
    """A policy or catalog file is malformed or inconsistent."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


class PolicyError(ConfigError):
    """The policy file is malformed or inconsistent."""


class CatalogError(ConfigError):
    """The source catalog is malformed, or disagrees with the policy or with a source."""


class UnknownSourceError(LifecycleError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown source {name!r}; the catalog has: {', '.join(sorted(known))}")


class SecretMissingError(LifecycleError):
    """The keyed-hash secret is not configured."""


class WeakSecretError(LifecycleError):
    """The keyed-hash secret is too weak; ``rule`` names the rule it breaks (never the secret)."""

    def __init__(self, message: str, *, rule: str = "") -> None:
        self.rule = rule
        super().__init__(message)


class PlanNeedsConfirmationError(LifecycleError):
    """A plan would destroy an unusual share of a source and needs a person to confirm it."""


class UndeclaredReferenceError(LifecycleError):
    """Foreign keys point at a source from tables the catalog does not describe as its
    children: deleting its records would be refused, or cascade into data nobody planned for."""

    def __init__(self, problems: dict[str, list[str]]):
        self.problems = problems
        listed = "; ".join(f"source {s}: {', '.join(refs)}" for s, refs in sorted(problems.items()))
        super().__init__(
            f"foreign keys the catalog does not declare point at sources to be changed ({listed}); a delete would be "
            "refused or cascade into records nobody planned for. Catalogue those tables with subject.via; nothing "
            "was changed")


class ValidationFailedError(LifecycleError):
    """Post-enforcement validation did not pass."""


class KeyMismatchError(LifecycleError):
    """The keyed-hash secret differs from the one that built the index: nothing was read."""


class RequestNotVerifiedError(LifecycleError):
    """After acting on a request, the person's identifiers were still found in a source."""

    def __init__(self, message: str, documents: object = None) -> None:
        super().__init__(message)
        self.documents = documents  # the certificate that says where


class InvalidRequestError(LifecycleError):
    """A request's input is malformed: nothing was read or written.

    ``field`` names the form field and ``rule`` the rule it broke; the message names both and
    never repeats the value (it may be personal data, or an attack to be kept out of logs)."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        self.field, self.rule = field, rule
        super().__init__(f"{field}: {message}" if field else message)


class RegisterError(ConfigError):
    """The transfer-mechanism table is malformed."""


class MalformedObjectError(LifecycleError):
    """An object's content cannot be read as records of its source's format."""


class ValidationRunError(LifecycleError):
    """GX could not evaluate an expectation (a missing table, a lost search_path, a bad query)."""


class SinkError(LifecycleError):
    """An artifact location is malformed."""


class ObjectDeleteError(LifecycleError):
    """Some object versions could not be deleted, even after retries."""

    def __init__(self, failures: list, attempts: int = 5) -> None:  # list[objects.DeleteFailure]
        self.failures = failures
        codes = sorted({f.code for f in failures})
        super().__init__(f"{len(failures)} object version(s) could not be deleted after {attempts} attempts "
                         f"(errors: {', '.join(codes)}); they are kept and the batch stays unfinished")


class AuditChainBrokenError(LifecycleError):
    """The audit trail's hash chain is broken: an entry was changed, removed or reordered (or
    the trail was written under another secret). ``first_broken`` is the entry's seq."""

    def __init__(self, message: str, *, first_broken: int | None = None) -> None:
        self.first_broken = first_broken
        super().__init__(message)


class SimulatedCrash(RuntimeError):
    """Raised by crash tests between writing an object and deleting its old versions."""
