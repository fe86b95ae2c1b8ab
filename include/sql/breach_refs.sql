-- Breach scope: every index entry of the affected records, record by record (the order of
-- ix_lc_subject_ref_record), to group identifiers into persons and write the protected
-- contact list. Keyed hashes and record keys only.
SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, t.role, t.controller
FROM lc_subject_ref r
JOIN lc_record_tag t ON t.source = r.source AND t.record_key = r.record_key AND t.category = r.category
WHERE r.source IN :sources
  AND (t.clock_value IS NULL OR (t.clock_value >= :from_date AND t.clock_value <= :to_date))
  AND (t.source NOT IN :prefix_sources OR EXISTS (
        SELECT 1 FROM lc_object_state o
        WHERE o.source = t.source AND o.object_ref = {object_ref_sql}
          AND substr(o.object_key, 1, :key_prefix_length) = :key_prefix))
ORDER BY r.source, r.record_key
