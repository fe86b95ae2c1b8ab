-- Records whose every category has expired (or was already anonymised) get the source's
-- on_expiry action as a whole. A record with an open violation or restriction is excluded;
-- a record held after an erasure request (status held) is erased when its obligation ends.
INSERT INTO lc_plan_item (run_id, source, record_key, category, scope, action, lawful_basis, reason)
SELECT CAST(:run_id AS VARCHAR(250)), t.source, t.record_key, t.category, 'record', t.on_expiry, t.lawful_basis, COALESCE(t.expiry_reason, 'retention_expired')
FROM lc_record_tag t
WHERE t.source = :source
  AND t.status IN ('active', 'held')
  AND t.deadline < :logical_date
  AND NOT EXISTS (
    SELECT 1 FROM lc_record_tag o
    WHERE o.source = t.source
      AND o.record_key = t.record_key
      AND (o.status IN ('violation', 'restricted')
           OR (o.status IN ('active', 'held') AND (o.deadline IS NULL OR o.deadline >= :logical_date)))
  )
  AND NOT EXISTS (
    SELECT 1 FROM lc_plan_item p
    WHERE p.run_id = :run_id AND p.source = t.source AND p.record_key = t.record_key AND p.category = t.category
  )
