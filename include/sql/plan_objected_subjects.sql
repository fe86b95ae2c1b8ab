-- People who objected to direct marketing (Art. 21) whose data came back into a marketing
-- activity: remove them again. Only run for controller-role direct-marketing sources.
INSERT INTO lc_plan_item (run_id, source, record_key, category, scope, action, lawful_basis, reason)
SELECT CAST(:run_id AS VARCHAR(250)), t.source, t.record_key, t.category, 'record', 'erase', t.lawful_basis, 'objection_to_marketing'
FROM lc_record_tag t
WHERE t.source = :source
  AND t.status = 'active'
  AND EXISTS (
    SELECT 1 FROM lc_subject_ref r
    JOIN lc_suppression s ON s.subject_hash = r.subject_hash AND s.reason = 'objection'
    WHERE r.source = t.source AND r.record_key = t.record_key AND r.free_text = :no
  )
  AND NOT EXISTS (
    SELECT 1 FROM lc_plan_item p
    WHERE p.run_id = :run_id AND p.source = t.source AND p.record_key = t.record_key AND p.category = t.category
  )
