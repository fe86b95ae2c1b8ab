-- Breach scope: the kinds of identifier exposed (personnummer, e-mail, phone, ...), in
-- structured columns or in free text: occurrences and distinct keyed hashes (grouped by hash
-- first rather than COUNT(DISTINCT): a hash aggregate instead of a sort on PostgreSQL).
-- The index entries of the affected records: see breach_refs.sql.
SELECT kind, free_text, SUM(occurrences) AS occurrences, COUNT(*) AS identifiers
FROM (
  SELECT r.kind, r.free_text, r.subject_hash, COUNT(*) AS occurrences
  FROM lc_subject_ref r
  WHERE {refs_in_scope_sql}
  GROUP BY r.kind, r.free_text, r.subject_hash
) per_identifier
GROUP BY kind, free_text
ORDER BY kind, free_text
