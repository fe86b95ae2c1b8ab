-- Breach scope: records of the affected sources per source, role and controller; undated ones
-- counted apart (under a time window they stay in scope: their date is unknown). A record has one
-- tag row per category: grouped by record first, along the primary key, without a DISTINCT sort.
-- The scope (sources, window, bucket prefix) is include/sql/breach_in_scope.sql, as in every breach_*.sql.
SELECT source, role, controller, COUNT(*) AS records, SUM(undated) AS undated
FROM (
  SELECT t.source, t.record_key, MAX(t.role) AS role, MAX(t.controller) AS controller,
         MAX(CASE WHEN t.clock_value IS NULL THEN 1 ELSE 0 END) AS undated
  FROM lc_record_tag t
  WHERE {in_scope_sql}
  GROUP BY t.source, t.record_key
) per_record
GROUP BY source, role, controller
ORDER BY source, role, controller
