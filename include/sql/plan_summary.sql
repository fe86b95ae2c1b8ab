SELECT scope, action, reason, category, lawful_basis, COUNT(*) AS items, COUNT(DISTINCT record_key) AS records
FROM lc_plan_item
WHERE run_id = :run_id AND source = :source
GROUP BY scope, action, reason, category, lawful_basis
ORDER BY scope, action, reason, category, lawful_basis
