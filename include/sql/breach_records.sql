-- Breach scope: records of the affected sources (a record is one key, whatever its number of
-- categories), per source, role and controller; undated ones counted apart (they are kept in
-- scope under a time window: their date is unknown, so they may be among the affected ones).
-- The WHERE clause is the same in every breach_*.sql: sources, window on the retention clock,
-- and, for sources named only through a bucket prefix, the objects whose key starts with it.
SELECT t.source, t.role, t.controller,
       COUNT(DISTINCT t.record_key) AS records,
       COUNT(DISTINCT CASE WHEN t.clock_value IS NULL THEN t.record_key END) AS undated
FROM lc_record_tag t
WHERE t.source IN :sources
  AND (t.clock_value IS NULL OR (t.clock_value >= :from_date AND t.clock_value <= :to_date))
  AND (t.source NOT IN :prefix_sources OR EXISTS (
        SELECT 1 FROM lc_object_state o
        WHERE o.source = t.source AND o.object_ref = {object_ref_sql}
          AND substr(o.object_key, 1, :key_prefix_length) = :key_prefix))
GROUP BY t.source, t.role, t.controller
ORDER BY t.source, t.role, t.controller
