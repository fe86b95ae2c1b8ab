-- Erased people whose data came back (a re-import, a restored backup): erase it again.
-- Only the person's own records (structured identifiers), only controller data, and not
-- where a legal obligation still runs (those are held by the erasure request itself).
INSERT INTO lc_plan_item (run_id, source, record_key, category, scope, action, lawful_basis, reason)
SELECT CAST(:run_id AS VARCHAR(250)), t.source, t.record_key, t.category, 'record', 'erase', t.lawful_basis, 'erased_subject_returned'
FROM lc_record_tag t
WHERE t.source = :source
  AND t.status = 'active'
  AND t.role = 'controller'
  AND EXISTS (
    SELECT 1 FROM lc_subject_ref r
    JOIN lc_suppression s ON s.subject_hash = r.subject_hash AND s.reason = 'erasure'
    WHERE r.source = t.source AND r.record_key = t.record_key AND r.free_text = :no
  )
  AND NOT EXISTS (
    SELECT 1 FROM lc_record_tag o
    WHERE o.source = t.source AND o.record_key = t.record_key
      AND (o.status NOT IN ('active', 'anonymised')
           OR (o.lawful_basis = 'legal_obligation' AND (o.deadline IS NULL OR o.deadline >= :logical_date)))
  )
