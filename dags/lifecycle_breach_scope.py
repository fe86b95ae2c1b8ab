"""
### Breach scope (GDPR Art. 33-34)

When personal data may have leaked, trigger this DAG with what was affected: the **sources**
(catalog names), or a **bucket prefix** for object-storage sources, optionally a **window** on
the records' dates (their retention clock), the **incident reference** and **when the breach was
discovered**. It answers in seconds from the tag store and the subject index:

- how many **persons** and records are affected, which **categories** of data and of persons,
  which **identifier kinds** were exposed (personnummer, e-mail, phone, free text);
- which **processor customers** must be told (Art. 33(2));
- the frame of the notification to the authority: the **72-hour deadline** from discovery,
  counts and categories, with "likely consequences" and "measures taken" for a person to write.

The report (JSON + HTML, counts only) goes to the report folder under `breaches/`. The list of
persons to contact (Art. 34: their keyed hashes and the records where they appear) is written
only to the protected folder (`lifecycle_extract_dir`), owner-only; never to logs or XCom.
Invalid input fails the first task before anything is read.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from lifecycle_airflow import breach


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Stockholm"),
    catchup=False,
    doc_md=__doc__,
    tags=["gdpr", "lifecycle", "breach"],
    params={
        "reference": Param("", type="string", minLength=3, maxLength=40, pattern="^[A-Za-z0-9][A-Za-z0-9._-]{2,39}$",
                           title="Incident reference", description="Your incident number, e.g. INC-2026-0042.",
                           section="Incident"),
        "discovered_at": Param(None, type=["null", "string"], format="date-time", title="Discovered at",
                               description="When the breach was discovered: the 72 hours to notify the authority "
                                           "start here (Stockholm time unless an offset is given).",
                               section="Incident"),
        "sources": Param([], type="array", items={"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,99}$"},
                         title="Affected sources", description="Catalog source names, affected as a whole.",
                         section="What was affected"),
        "object_prefix": Param(None, type=["null", "string"], maxLength=1024,
                               pattern="^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
                               title="Bucket prefix",
                               description="Objects under s3://bucket/prefix of object-storage sources.",
                               section="What was affected"),
        "window_from": Param(None, type=["null", "string"], format="date", title="Records dated from",
                             description="Only records whose retention-clock date is on or after this day "
                                         "(undated records stay in scope).", section="Time window"),
        "window_to": Param(None, type=["null", "string"], format="date", title="Records dated to",
                           description="Only records whose retention-clock date is on or before this day.",
                           section="Time window"),
    },
)
def lifecycle_breach_scope():
    @task
    def validate_scope() -> dict:
        return breach.validate(get_current_context())

    @task
    def scope_breach(_valid: dict) -> dict:
        return breach.scope(get_current_context())

    scope_breach(validate_scope())


lifecycle_breach_scope()
