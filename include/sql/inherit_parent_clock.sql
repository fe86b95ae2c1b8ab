-- Records with no clock of their own follow their parent (catalog retention_clock: {parent: ...}):
-- the earliest deadline among the parent record's categories, recomputed every night, so a
-- parent whose relationship runs on carries its children along. Records whose consent was
-- withdrawn keep their own, earlier deadline; records with another violation are left as they are.
UPDATE lc_record_tag
SET deadline = (SELECT MIN(p.deadline) FROM lc_record_tag p
                WHERE p.source = :parent AND p.record_key = lc_record_tag.parent_key),
    clock_value = (SELECT MIN(p.clock_value) FROM lc_record_tag p
                   WHERE p.source = :parent AND p.record_key = lc_record_tag.parent_key),
    violation = CASE
      WHEN NOT EXISTS (SELECT 1 FROM lc_record_tag p
                       WHERE p.source = :parent AND p.record_key = lc_record_tag.parent_key) THEN 'parent_not_found'
      WHEN EXISTS (SELECT 1 FROM lc_record_tag p
                   WHERE p.source = :parent AND p.record_key = lc_record_tag.parent_key AND p.status = 'violation')
           AND NOT EXISTS (SELECT 1 FROM lc_record_tag p
                           WHERE p.source = :parent AND p.record_key = lc_record_tag.parent_key
                             AND p.deadline IS NOT NULL) THEN 'parent_without_clock'
      ELSE NULL END
WHERE source = :child
  AND parent_key IS NOT NULL
  AND expiry_reason IS NULL
  AND (status = 'active' OR (status = 'violation'
       AND violation IN ('awaiting_parent', 'parent_not_found', 'parent_without_clock')))
