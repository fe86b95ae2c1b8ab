-- Erased people mentioned in someone else's free text that came back (a re-import, a restored
-- backup) or was scanned only later: redact the mentions span by span, as the erasure request
-- did, and leave the rest of the text. Only identifiers the free-text detectors find again
-- (lifecycle.redaction.FREE_TEXT_KINDS), only categories still active (an anonymised text holds
-- nothing any more; restricted, held or violating ones are kept as they are for review), and
-- not processor data (it obeys the customer's instruction). Runs after the other plan
-- statements: a record with a plan of its own (erased, anonymised or restricted whole) or a
-- category already planned (expired: anonymised whole) is left to that plan.
INSERT INTO lc_plan_item (run_id, source, record_key, category, scope, action, lawful_basis, reason)
SELECT CAST(:run_id AS VARCHAR(250)), t.source, t.record_key, t.category, 'fields', 'redact', t.lawful_basis, 'erased_subject_mentioned'
FROM lc_record_tag t
WHERE t.source = :source
  AND t.status = 'active'
  AND t.role <> 'processor'
  AND EXISTS (
    SELECT 1 FROM lc_subject_ref r
    JOIN lc_suppression s ON s.subject_hash = r.subject_hash AND s.reason = 'erasure'
    WHERE r.source = t.source AND r.record_key = t.record_key AND r.category = t.category
      AND r.free_text = :yes
      AND r.kind IN ('email', 'phone', 'personnummer', 'org_number', 'ip')
  )
  AND NOT EXISTS (
    SELECT 1 FROM lc_plan_item p
    WHERE p.run_id = :run_id AND p.source = t.source AND p.record_key = t.record_key
      AND (p.scope = 'record' OR p.category = t.category)
  )
