-- The status that goes with the violation inherit_parent_clock just decided.
UPDATE lc_record_tag
SET status = CASE WHEN violation IS NULL THEN 'active' ELSE 'violation' END
WHERE source = :child
  AND parent_key IS NOT NULL
  AND expiry_reason IS NULL
  AND status IN ('active', 'violation')
  AND (violation IS NULL OR violation IN ('parent_not_found', 'parent_without_clock'))
