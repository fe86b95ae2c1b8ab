SELECT action, category, record_key
FROM lc_plan_item
WHERE run_id = :run_id AND source = :source AND scope = 'fields'
ORDER BY action, category, record_key
