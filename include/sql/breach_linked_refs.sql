-- Breach scope: people whose identifiers are not in the affected records but who own them
-- through foreign keys (an order, its lines, a ticket: catalog subject.via). From each affected
-- record, up the parent_key chain (edge: child source -> parent source) to every ancestor, and
-- the structured identifiers of those ancestors: their own records, not mentions in free text.
WITH RECURSIVE edge(child, parent) AS (
  {edges_sql}
),
up(source, record_key) AS (
  SELECT e.parent, t.parent_key
  FROM lc_record_tag t JOIN edge e ON e.child = t.source
  WHERE t.source IN :sources AND t.parent_key IS NOT NULL
    AND (t.clock_value IS NULL OR (t.clock_value >= :from_date AND t.clock_value <= :to_date))
    AND (t.source NOT IN :prefix_sources OR EXISTS (
          SELECT 1 FROM lc_object_state o
          WHERE o.source = t.source AND o.object_ref = {object_ref_sql}
            AND substr(o.object_key, 1, :key_prefix_length) = :key_prefix))
  UNION
  SELECT e.parent, t.parent_key
  FROM up u
  JOIN edge e ON e.child = u.source
  JOIN lc_record_tag t ON t.source = u.source AND t.record_key = u.record_key
  WHERE t.parent_key IS NOT NULL
)
SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, t.role, t.controller
FROM up u
JOIN lc_subject_ref r ON r.source = u.source AND r.record_key = u.record_key
JOIN lc_record_tag t ON t.source = r.source AND t.record_key = r.record_key AND t.category = r.category
WHERE NOT r.free_text
ORDER BY r.source, r.record_key
