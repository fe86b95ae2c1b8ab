-- A parent record planned to be erased while one of its child records stays (not erased
-- tonight) would break a RESTRICT foreign key, or be cascaded into the kept record: it is
-- anonymised and kept instead, and the plan says why. Run children first, so a kept
-- grandchild keeps its parent and, through it, the grandparent.
UPDATE lc_plan_item
SET action = 'anonymise', reason = 'referenced_by_kept_record'
WHERE run_id = :run_id
  AND source = :parent
  AND scope = 'record'
  AND action = 'erase'
  AND EXISTS (
    SELECT 1 FROM lc_record_tag c
    WHERE c.source = :child
      AND c.parent_key = lc_plan_item.record_key
      AND NOT EXISTS (
        SELECT 1 FROM lc_plan_item q
        WHERE q.run_id = :run_id AND q.source = c.source AND q.record_key = c.record_key
          AND q.scope = 'record' AND q.action = 'erase'))
