-- Breach scope: records in scope with tag rows from before first_of_record existed (NULL) and
-- no row marked first: counted by distinct key, per source, role and controller. Only run when
-- breach_records.sql saw such rows; a store rescanned since has none.
SELECT source, role, controller, COUNT(*) AS records, SUM(undated) AS undated
FROM (
  SELECT DISTINCT t.source, t.record_key, t.role, t.controller,
         CASE WHEN t.clock_value IS NULL THEN 1 ELSE 0 END AS undated
  FROM lc_record_tag t
  WHERE t.first_of_record IS NULL AND {in_scope_sql}
    AND NOT EXISTS (SELECT 1 FROM lc_record_tag f
                    WHERE f.source = t.source AND f.record_key = t.record_key AND f.first_of_record)
) unlabelled
GROUP BY source, role, controller
