-- Categories whose lawful basis, controller or retention clock cannot be determined:
-- restrict them (exclude from processing) and report; never silently keep or delete.
INSERT INTO lc_plan_item (run_id, source, record_key, category, scope, action, lawful_basis, reason)
SELECT CAST(:run_id AS VARCHAR(250)), t.source, t.record_key, t.category, 'fields', 'restrict', t.lawful_basis, t.violation
FROM lc_record_tag t
WHERE t.source = :source
  AND t.status = 'violation'
