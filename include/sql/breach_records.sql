-- Breach scope: records of the affected sources per source, role and controller; undated ones
-- counted apart (under a time window they stay in scope: their date is unknown). A record has a
-- tag row per category, all with the record's role, controller and clock: the distinct
-- (record, role, controller, undated) are its records, a hash of keys with no aggregate state
-- (a record whose rows disagreed would count once per variant: too many, never too few).
-- The scope (sources, window, bucket prefix) is include/sql/breach_in_scope.sql, as in every breach_*.sql.
SELECT source, role, controller, COUNT(*) AS records, SUM(undated) AS undated
FROM (
  SELECT DISTINCT t.source, t.record_key, t.role, t.controller,
         CASE WHEN t.clock_value IS NULL THEN 1 ELSE 0 END AS undated
  FROM lc_record_tag t
  WHERE {in_scope_sql}
) per_record
GROUP BY source, role, controller
ORDER BY source, role, controller
