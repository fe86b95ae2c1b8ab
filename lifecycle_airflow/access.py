"""Who may do what: data-subject requests and approvals belong to a privacy role, the compliance
page to a role allowed to see it.

Airflow's own SimpleAuthManager has four fixed roles, in order viewer < user < op < admin, and
lets every ``user`` trigger every DAG and answer every approval. ``LifecycleAuthManager`` is
that auth manager with three rules more, enforced wherever Airflow asks the auth manager (the
REST API, hence the UI's trigger and approval buttons, and the compliance page):

- the request DAG (``lifecycle_subject_request``: erasure, extracts, rectification) is seen,
  triggered, cleared or marked only by users holding the privacy role: its runs carry the
  identifiers of the person who asked;
- an approval (a human-in-the-loop answer) in any DAG is given only by the privacy role;
- the compliance page is seen only by the compliance role.

The roles are named by LIFECYCLE_PRIVACY_ROLE and LIFECYCLE_COMPLIANCE_ROLE (viewer, user, op or
admin; a role and every role above it; default op for both), read from the API server's
environment. Deliberately not from Airflow Variables: an ``op`` may edit Variables, and would
otherwise be able to lower the bar for themselves.

Set ``AIRFLOW__CORE__AUTH_MANAGER=lifecycle_airflow.access.LifecycleAuthManager``. With another
auth manager (FAB's, say) the page asks it the same question (``is_authorized_custom_view`` on
"Lifecycle compliance"), and its roles and DAG ``access_control`` give the answers.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager, SimpleAuthManagerRole
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

from lifecycle.errors import ConfigError

PRIVACY_ROLE_ENV = "LIFECYCLE_PRIVACY_ROLE"
COMPLIANCE_ROLE_ENV = "LIFECYCLE_COMPLIANCE_ROLE"
DEFAULT_ROLE = "op"
PRIVACY_DAGS = frozenset({"lifecycle_subject_request"})
COMPLIANCE_VIEW = "Lifecycle compliance"  # the custom view's resource name, as the auth manager sees it


def required_role(env_var: str) -> SimpleAuthManagerRole:
    """The least role an environment variable asks for; a name that is no role fails, naming it."""
    name = (os.environ.get(env_var) or DEFAULT_ROLE).strip()
    try:
        return SimpleAuthManagerRole[name.upper()]
    except KeyError:
        allowed = ", ".join(r.name.lower() for r in SimpleAuthManagerRole)
        raise ConfigError(f"environment {env_var}", "role", f"{name!r} is not a role (one of {allowed})") from None


def holds(role: str | None, needed: SimpleAuthManagerRole) -> bool:
    """Whether a SimpleAuthManager role is ``needed`` or above it."""
    held = SimpleAuthManagerRole.__members__.get((role or "").upper())
    return held is not None and held.order >= needed.order


def may_see_compliance(auth_manager: Any, user: Any) -> bool:
    """The compliance page's check, for any auth manager: it must allow the view, and a user
    with one of SimpleAuthManager's roles must also hold the compliance role (so the page stays
    closed to viewers even where the plain SimpleAuthManager is configured)."""
    if not auth_manager.is_authorized_custom_view(method="GET", resource_name=COMPLIANCE_VIEW, user=user):
        return False
    role = getattr(user, "role", None)  # other auth managers' users answered above
    return role is None or holds(role, required_role(COMPLIANCE_ROLE_ENV))


class LifecycleAuthManager(SimpleAuthManager):
    """SimpleAuthManager, with the request DAG and approvals kept to the privacy role and the
    compliance page to the compliance role."""

    def is_authorized_dag(self, *, method: Any, user: SimpleAuthManagerUser,
                          access_entity: DagAccessEntity | None = None, details: DagDetails | None = None) -> bool:
        if not super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details):
            return False
        privacy_dag = details is not None and details.id in PRIVACY_DAGS
        answering = access_entity == DagAccessEntity.HITL_DETAIL and method != "GET"
        if privacy_dag or answering:
            return holds(user.role, required_role(PRIVACY_ROLE_ENV))
        return True

    def is_authorized_custom_view(self, *, method: Any, resource_name: str, user: SimpleAuthManagerUser) -> bool:
        if resource_name == COMPLIANCE_VIEW:
            return holds(user.role, required_role(COMPLIANCE_ROLE_ENV))
        return super().is_authorized_custom_view(method=method, resource_name=resource_name, user=user)
