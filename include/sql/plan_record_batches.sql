-- Whole-record plan items, one row per record, in a stable order so batches are the same on
-- every re-run of the plan.
SELECT DISTINCT action, record_key
FROM lc_plan_item
WHERE run_id = :run_id AND source = :source AND scope = 'record'
ORDER BY action, record_key
