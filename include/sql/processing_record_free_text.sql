-- Record of processing (GDPR art. 30): distinct identifiers found in the free text of each role,
-- controller, activity and category: people who may be mentioned there besides the record's subject.
SELECT t.role, t.controller, t.activity, t.category, COUNT(DISTINCT r.subject_hash) AS identifiers
FROM lc_record_tag t
JOIN lc_subject_ref r ON r.source = t.source AND r.record_key = t.record_key AND r.category = t.category
WHERE t.status <> 'anonymised' AND r.free_text = :yes
GROUP BY t.role, t.controller, t.activity, t.category
ORDER BY t.role, t.controller, t.activity, t.category
