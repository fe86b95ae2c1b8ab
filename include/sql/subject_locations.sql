-- Every place a person's identifiers occur: structured columns and free text, all sources.
-- The primary key leads with subject_hash, so the cost follows the number of matches.
SELECT subject_hash, source, record_key, field, kind, category, free_text
FROM lc_subject_ref
WHERE subject_hash IN :hashes
ORDER BY source, record_key, field
