-- Breach scope: the kinds of identifier exposed (personnummer, e-mail, phone, ...), in
-- structured columns or in free text: occurrences and distinct keyed hashes (grouped by hash
-- first rather than COUNT(DISTINCT): a hash aggregate instead of a sort on PostgreSQL).
-- A reference's category is one of its record's tag rows: the join is on the full primary key.
SELECT kind, free_text, SUM(occurrences) AS occurrences, COUNT(*) AS identifiers
FROM (
  SELECT r.kind, r.free_text, r.subject_hash, COUNT(*) AS occurrences
  FROM lc_record_tag t
  JOIN lc_subject_ref r ON r.source = t.source AND r.record_key = t.record_key AND r.category = t.category
  WHERE {in_scope_sql}
  GROUP BY r.kind, r.free_text, r.subject_hash
) per_identifier
GROUP BY kind, free_text
ORDER BY kind, free_text
