-- Breach scope: which categories of data were exposed, of which activities and on which basis.
SELECT t.source, t.activity, t.category, COALESCE(t.lawful_basis, '(none)') AS lawful_basis,
       COUNT(*) AS records
FROM lc_record_tag t
WHERE t.source IN :sources
  AND (t.clock_value IS NULL OR (t.clock_value >= :from_date AND t.clock_value <= :to_date))
  AND (t.source NOT IN :prefix_sources OR EXISTS (
        SELECT 1 FROM lc_object_state o
        WHERE o.source = t.source AND o.object_ref = {object_ref_sql}
          AND substr(o.object_key, 1, :key_prefix_length) = :key_prefix))
GROUP BY t.source, t.activity, t.category, COALESCE(t.lawful_basis, '(none)')
ORDER BY t.source, t.activity, t.category, lawful_basis
