-- Record of processing (GDPR art. 30): distinct data subjects per role, controller, activity and
-- category. A record's subjects are named by the structured identifiers of the record itself and
-- of the records it belongs to through the catalog's subject.via (an order line -> its order ->
-- its customer); the "via" rows are those (child, parent) source pairs, as bind parameters.
-- One person carries several identifiers (e-mail, phone, name): the count per category is the
-- largest number of distinct identifiers of one kind, so a person is not counted once per kind.
WITH RECURSIVE via (child, parent) AS (
  {via_sql}
),
owner (source, record_key, owner_source, owner_key, depth) AS (
  SELECT DISTINCT source, record_key, source, record_key, 0
  FROM lc_record_tag
  WHERE status <> 'anonymised'
  UNION
  SELECT o.source, o.record_key, v.parent, t.parent_key, o.depth + 1
  FROM owner o
  JOIN via v ON v.child = o.owner_source
  JOIN lc_record_tag t ON t.source = o.owner_source AND t.record_key = o.owner_key
  WHERE t.parent_key IS NOT NULL AND o.depth < 8
),
per_kind AS (
  SELECT t.role, t.controller, t.activity, t.category, r.kind, COUNT(DISTINCT r.subject_hash) AS subjects
  FROM lc_record_tag t
  JOIN owner o ON o.source = t.source AND o.record_key = t.record_key
  JOIN lc_subject_ref r ON r.source = o.owner_source AND r.record_key = o.owner_key
  WHERE t.status <> 'anonymised' AND r.free_text = :no
  GROUP BY t.role, t.controller, t.activity, t.category, r.kind
)
SELECT role, controller, activity, category, MAX(subjects) AS data_subjects
FROM per_kind
GROUP BY role, controller, activity, category
ORDER BY role, controller, activity, category
