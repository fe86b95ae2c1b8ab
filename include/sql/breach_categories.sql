-- Breach scope: which categories of data were exposed, of which activities and on which basis.
SELECT t.source, t.activity, t.category, COALESCE(t.lawful_basis, '(none)') AS lawful_basis,
       COUNT(*) AS records
FROM lc_record_tag t
WHERE {in_scope_sql}
GROUP BY t.source, t.activity, t.category, COALESCE(t.lawful_basis, '(none)')
ORDER BY t.source, t.activity, t.category, lawful_basis
