"""Who may do what: data-subject requests and approvals belong to a privacy role, the compliance
page to a role allowed to see it.

Airflow's own SimpleAuthManager has four fixed roles, in order viewer < user < op < admin, and
lets every ``user`` trigger every DAG and answer every approval. ``LifecycleAuthManager`` is
that auth manager with three rules more, enforced wherever Airflow asks the auth manager (the
REST API, hence the UI's trigger and approval buttons, and the compliance page):

- the request DAG (``lifecycle_subject_request``: erasure, extracts, rectification) and the
  breach-scope DAG (``lifecycle_breach_scope``: its contact list) are seen, triggered, cleared or
  marked only by users holding the privacy role: their runs carry or lead to people's identifiers;
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
# Their runs carry a person's identifiers (requests) or lead to the persons affected (breach scope).
PRIVACY_DAGS = frozenset({"lifecycle_subject_request", "lifecycle_breach_scope"})
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
    if not isinstance(user, SimpleAuthManagerUser):  # FAB and others answered above, from their own roles
        return True
    return holds(user.role, required_role(COMPLIANCE_ROLE_ENV))


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


# -- under FAB's auth manager (docker-compose) -------------------------------------------------
# FAB's own User, Op and Viewer roles carry rights on every DAG ("DAGs"), the request DAG
# included. These roles take the DAG-wide rights out and give them back DAG by DAG, so only the
# privacy role reaches the request DAG (whose runs carry identifiers) and answers approvals.
FAB_PRIVACY_ROLE = "Lifecycle privacy"
FAB_OPERATOR_ROLE = "Lifecycle operator"
FAB_VIEWER_ROLE = "Lifecycle viewer"
FAB_COMPLIANCE_ROLE = "Lifecycle compliance"
_DAG_WIDE = {("can_read", "DAGs"), ("can_edit", "DAGs"), ("can_delete", "DAGs")}


def fab_role_permissions(viewer: set[tuple[str, str]], user: set[tuple[str, str]],
                         other_dags: tuple[str, ...]) -> dict[str, set[tuple[str, str]]]:
    """(action, resource) pairs of each Lifecycle role, from FAB's Viewer and User roles."""
    def per_dag(actions: tuple[str, ...]) -> set[tuple[str, str]]:
        return {(action, f"DAG:{dag}") for dag in other_dags for action in actions}

    page = {("can_read", COMPLIANCE_VIEW)}
    return {
        FAB_VIEWER_ROLE: (viewer - _DAG_WIDE) | per_dag(("can_read",)),
        FAB_OPERATOR_ROLE: (user - _DAG_WIDE - {("can_edit", "HITL Detail")}) | per_dag(("can_read", "can_edit")),
        FAB_PRIVACY_ROLE: user | page,  # every DAG, the request DAG and approvals included
        FAB_COMPLIANCE_ROLE: page,
        "Admin": page,
    }


def prepare_fab_roles(other_dags: tuple[str, ...] = ("lifecycle_nightly",)) -> None:
    """Create (or complete) the Lifecycle roles in FAB's database: run by the docker-compose init
    service after ``airflow db migrate``. ``other_dags``: the DAGs besides the request DAG."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm

        def pairs(role: str) -> set[tuple[str, str]]:
            return {(p.action.name, p.resource.name) for p in sm.find_role(role).permissions}

        wanted = fab_role_permissions(pairs("Viewer"), pairs("User"), other_dags)
        for name, permissions in wanted.items():
            role = sm.find_role(name) or sm.add_role(name)
            missing = sorted(permissions - pairs(name))
            for action, resource in missing:  # create_permission makes the resource too (DAG:..., the page)
                sm.add_permission_to_role(role, sm.create_permission(action, resource))
            print(f"FAB role {name}: {len(missing)} permissions added")
