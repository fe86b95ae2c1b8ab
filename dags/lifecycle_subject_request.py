"""
### Data-subject request

Handle one person's request from the Airflow UI: **erasure** (Art. 17), an **access
extract** (Art. 15), **rectification** (Art. 16), **withdrawal of consent** or an **objection
to direct marketing** (Art. 21). Fill in the request reference and any of the person's
identifiers.

- Invalid input (a malformed e-mail, a personnummer with a wrong check digit, no identifier
  at all) fails the first task before anything is read or written.
- Erasure resolves every location of the person through the subject index: their own records
  are erased, or kept by law (bookkeeping under BFL) with the rest anonymised; mentions in
  other people's messages are redacted; a customer's advertising data (processor role) is left
  to that customer and the request recorded as forwarded. The person is searched for again
  afterwards, and the run fails if anything remains. An erasure certificate (no personal data)
  is written next to the nightly reports.
- **Dry run is on by default** for erasure: it shows what would happen and changes nothing.
- Withdrawal of consent erases what rests on consent alone and keeps what has another basis;
  an objection removes the person from marketing (newsletter; customers' audiences are
  forwarded) and keeps them out: the nightly run removes them again if they come back.
- Rectification replaces the current e-mail or phone with the correct one wherever it sits.
- The access extract holds the person's data and is written only to the protected location
  (`lifecycle_extract_dir`).
- **Four eyes** (Variable `lifecycle_four_eyes`, default: erasure): what the request would do
  (counts per source and action, records held and why, customers it is forwarded to) waits for
  a second person to approve in the Airflow UI (Required actions) before anything changes; the
  one who triggered the run cannot approve it, and the certificate names the approver. Reject,
  or no answer within `lifecycle_approval_timeout_hours` (default 12), changes nothing.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from lifecycle_airflow import subject_request
from lifecycle_airflow.approvals import LifecycleApproval

# No control characters and none of ; = < > * " ` \ in a name or company (the simple part of the
# rules in lifecycle/rights/requests.py).
_FREE_TEXT = r'^[^;=<>*"`\\\x00-\x1f\x7f]*$'


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Stockholm"),
    catchup=False,
    doc_md=__doc__,
    tags=["gdpr", "lifecycle", "data-subject-request"],
    params={
        "request_type": Param("erasure", type="string",
                              enum=["erasure", "access", "rectification", "consent_withdrawal", "objection",
                                    "name_review"],
                              title="Request type",
                              description="Erasure (Art. 17), access extract (Art. 15), rectification (Art. 16), "
                                          "withdrawal of consent (Art. 7.3), objection to direct marketing (Art. 21); "
                                          "name review: decide on the name mentions an erasure listed.",
                              section="Request"),
        "reference": Param("", type="string", minLength=1, maxLength=100,
                           pattern="^(?!.*--)[A-Za-z0-9][A-Za-z0-9._/-]*$",
                           title="Request reference", description="Your case number, e.g. DSR-2026-0042.",
                           section="Request"),
        # The limits of lifecycle/rights/requests.py, so the form refuses early; the first task checks
        # everything again (SQL-looking text, check digits, the numbering plan) and is the authority.
        "email": Param(None, type=["null", "string"], format="email", maxLength=254,
                       pattern=r"^[A-Za-z0-9._%+-]{1,64}@([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$",
                       title="E-mail", section="Identifiers"),
        "phone": Param(None, type=["null", "string"], maxLength=30, pattern="^[0-9+() \u2013-]+$", title="Phone",
                       description="One Swedish number, e.g. 070-123 45 67 or +46 70 123 45 67.",
                       section="Identifiers"),
        "personnummer": Param(None, type=["null", "string"], maxLength=13, pattern="^([0-9]{2})?[0-9]{6}[-+]?[0-9]{4}$",
                              title="Personnummer",
                              description="YYYYMMDD-NNNN or YYMMDD-NNNN; the check digit is verified.",
                              section="Identifiers"),
        "name": Param(None, type=["null", "string"], maxLength=200, pattern=_FREE_TEXT, title="Name",
                      description="Only together with company.", section="Identifiers"),
        "company": Param(None, type=["null", "string"], maxLength=200, pattern=_FREE_TEXT, title="Company",
                         section="Identifiers"),
        "rectify_field": Param(None, type=["null", "string"], enum=[None, "email", "phone"],
                               title="Field to correct", description="Rectification only.", section="Rectification"),
        "new_value": Param(None, type=["null", "string"], maxLength=254, title="Correct value",
                           description="Rectification only: the new e-mail or phone.", section="Rectification"),
        "review_decision": Param(None, type=["null", "string"], enum=[None, "redact", "keep"], title="Decision",
                                 description="Name review only: redact the name in the listed messages, or keep it "
                                             "(another person of that name). Type the reviewed name under Name.",
                                 section="Name review"),
        "review_items": Param([], type="array", items={"type": "integer", "minimum": 1}, maxItems=1000,
                              title="Items", description="Name review only: item numbers from the erasure's review "
                                                         "list (empty: every pending item of that name).",
                              section="Name review"),
        "dry_run": Param(True, type="boolean", title="Dry run",
                         description="Show what would be erased without changing anything.", section="Safety"),
    },
)
def lifecycle_subject_request():
    @task
    def validate_request() -> dict:
        return subject_request.validate(get_current_context())

    @task
    def four_eyes_plan(_valid: dict) -> dict:
        return subject_request.four_eyes(get_current_context())

    @task
    def fulfil_request(_valid: dict, _approval: dict) -> dict:
        return subject_request.fulfil(get_current_context())

    valid = validate_request()
    fulfil_request(valid, LifecycleApproval(task_id="four_eyes", request=four_eyes_plan(valid)).output)


lifecycle_subject_request()
