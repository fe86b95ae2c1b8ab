-- Breach scope: the tag rows in scope in one pass, grouped by everything the report's records
-- and categories need (a handful of groups, no set of keys):
--   records per source, role and controller: the rows marked first_of_record (a record has a tag
--     row per category and one of them is its first; role, controller and clock are the
--     record's, the same on each); undated ones counted apart (under a time window they stay in
--     scope: their date is unknown);
--   categories of data per activity and lawful basis: every row.
-- Rows tagged before first_of_record existed (NULL) are counted by key: breach_records_unlabelled.sql.
-- The scope (sources, window, bucket prefix) is include/sql/breach_in_scope.sql, as in every breach_*.sql.
SELECT t.source, t.role, t.controller, t.activity, t.category, COALESCE(t.lawful_basis, '(none)') AS lawful_basis,
       t.first_of_record, CASE WHEN t.clock_value IS NULL THEN 1 ELSE 0 END AS undated, COUNT(*) AS tag_rows
FROM lc_record_tag t
WHERE {in_scope_sql}
GROUP BY t.source, t.role, t.controller, t.activity, t.category, COALESCE(t.lawful_basis, '(none)'),
         t.first_of_record, CASE WHEN t.clock_value IS NULL THEN 1 ELSE 0 END
