-- Record of processing (GDPR art. 30): distinct data subjects per role, controller, activity and
-- category. A record's subjects are named by the structured identifiers of the record itself and
-- of the records it belongs to through the catalog's subject.via (an order line -> its order ->
-- its customer); the "via" rows are those (child, parent) source pairs, as bind parameters.
-- One person carries several identifiers (e-mail, phone, name): the count per category is the
-- largest number of distinct identifiers of one kind, so a person is not counted once per kind.
WITH RECURSIVE via (child, parent) AS (
  {via_sql}
),
-- Each tag's group and the records whose identifiers name its subjects: itself, its parent, ...
-- (UNION drops repeats: only the distinct owners of a group matter for the count.)
owner (role, controller, activity, category, owner_source, owner_key, depth) AS (
  SELECT role, controller, activity, category, source, record_key, 0
  FROM lc_record_tag
  WHERE status <> 'anonymised'
  UNION
  -- CROSS JOIN keeps SQLite's join order (the queue row first, then a primary-key lookup; the
  -- COALESCE keeps it off the parent index); PostgreSQL plans it as an inner join.
  SELECT o.role, o.controller, o.activity, o.category, v.parent, t.parent_key, o.depth + 1
  FROM owner o
  CROSS JOIN via v
  CROSS JOIN lc_record_tag t
  WHERE v.child = o.owner_source AND t.source = o.owner_source AND t.record_key = o.owner_key
    AND COALESCE(t.parent_key, '') <> '' AND o.depth < 8
),
per_kind AS (
  SELECT o.role, o.controller, o.activity, o.category, r.kind, COUNT(DISTINCT r.subject_hash) AS subjects
  FROM owner o
  JOIN lc_subject_ref r ON r.source = o.owner_source AND r.record_key = o.owner_key
  WHERE r.free_text = :no
  GROUP BY o.role, o.controller, o.activity, o.category, r.kind
)
SELECT role, controller, activity, category, MAX(subjects) AS data_subjects
FROM per_kind
GROUP BY role, controller, activity, category
ORDER BY role, controller, activity, category
