-- What the tag store holds per source, category, lawful basis and status (for reports).
SELECT source, activity, category, COALESCE(lawful_basis, '(none)') AS lawful_basis, status, COUNT(*) AS tags
FROM lc_record_tag
GROUP BY source, activity, category, COALESCE(lawful_basis, '(none)'), status
ORDER BY source, category, lawful_basis, status
