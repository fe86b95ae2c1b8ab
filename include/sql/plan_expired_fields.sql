-- Expired categories of records that must be kept for another category (the longest
-- legitimate obligation wins, per field): anonymise only those categories' columns.
INSERT INTO lc_plan_item (run_id, source, record_key, category, scope, action, lawful_basis, reason)
SELECT CAST(:run_id AS VARCHAR(250)), t.source, t.record_key, t.category, 'fields', 'anonymise', t.lawful_basis, COALESCE(t.expiry_reason, 'retention_expired')
FROM lc_record_tag t
WHERE t.source = :source
  AND t.status = 'active'
  AND t.deadline < :logical_date
  AND NOT EXISTS (
    SELECT 1 FROM lc_plan_item p
    WHERE p.run_id = :run_id AND p.source = t.source AND p.record_key = t.record_key AND p.category = t.category
  )
