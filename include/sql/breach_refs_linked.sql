-- Breach scope, part of breach_refs.sql when an affected source has parents: the structured
-- identifiers of the ancestors (their own records, not mentions in their free text).
UNION ALL
SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, r.person, 'linked'
FROM (SELECT DISTINCT source, record_key FROM up) u
JOIN lc_subject_ref r ON r.source = u.source AND r.record_key = u.record_key
WHERE NOT r.free_text
