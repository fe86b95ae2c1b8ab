-- Breach scope: the kinds of identifier exposed (personnummer, e-mail, phone, ...), in
-- structured columns or in free text: occurrences, distinct keyed hashes and records.
-- A reference's category is one of its record's tag rows: the join is on the full primary key.
SELECT r.kind, r.free_text, COUNT(*) AS occurrences, COUNT(DISTINCT r.subject_hash) AS identifiers,
       COUNT(DISTINCT r.source || '/' || r.record_key) AS records
FROM lc_subject_ref r
JOIN lc_record_tag t ON t.source = r.source AND t.record_key = r.record_key AND t.category = r.category
WHERE t.source IN :sources
  AND (t.clock_value IS NULL OR (t.clock_value >= :from_date AND t.clock_value <= :to_date))
  AND (t.source NOT IN :prefix_sources OR EXISTS (
        SELECT 1 FROM lc_object_state o
        WHERE o.source = t.source AND o.object_ref = {object_ref_sql}
          AND substr(o.object_key, 1, :key_prefix_length) = :key_prefix))
GROUP BY r.kind, r.free_text
ORDER BY r.kind, r.free_text
