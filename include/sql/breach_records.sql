-- Breach scope: records of the affected sources per source, role and controller; undated ones
-- counted apart (under a time window they stay in scope: their date is unknown). A record has one
-- tag row per category: grouped by record first, along the primary key, without a DISTINCT sort.
-- The WHERE clause is the same in every breach_*.sql: sources, window on the retention clock, and,
-- for sources named only through a bucket prefix, the objects whose key starts with it.
SELECT source, role, controller, COUNT(*) AS records, SUM(undated) AS undated
FROM (
  SELECT t.source, t.record_key, MAX(t.role) AS role, MAX(t.controller) AS controller,
         MAX(CASE WHEN t.clock_value IS NULL THEN 1 ELSE 0 END) AS undated
  FROM lc_record_tag t
  WHERE t.source IN :sources
    AND (t.clock_value IS NULL OR (t.clock_value >= :from_date AND t.clock_value <= :to_date))
    AND (t.source NOT IN :prefix_sources OR EXISTS (
          SELECT 1 FROM lc_object_state o
          WHERE o.source = t.source AND o.object_ref = {object_ref_sql}
            AND substr(o.object_key, 1, :key_prefix_length) = :key_prefix))
  GROUP BY t.source, t.record_key
) per_record
GROUP BY source, role, controller
ORDER BY source, role, controller
