-- Breach scope, the common part of breach_persons.sql, breach_processor_persons.sql and
-- breach_contacts.sql (a fragment: it defines the CTE "refs", every identifier the breach
-- exposes or reaches):
--   direct: the index entries of the affected records (breach_refs_in_scope.sql: by source alone
--           when the whole source is affected, else the entries whose tag row is in scope);
--   linked: people who own affected records through foreign keys (an order, its lines, a
--           ticket: catalog subject.via): from each affected record up the parent_key chain
--           (edge: child source -> parent source) to its ancestors, and their structured
--           identifiers (their own records, not mentions in their free text).
-- Each row carries its person, labelled at scan time (lifecycle.discovery.label_persons): the
-- record's own person for a structured entry, the person named for a mention, '' for nobody.
-- Entries indexed before the label existed (NULL) count as the person they name (mentions) or
-- as a person per record: too many rather than too few.
WITH RECURSIVE edge(child, parent) AS (
  {edges_sql}
),
up(source, record_key) AS (
  SELECT e.parent, t.parent_key
  FROM lc_record_tag t JOIN edge e ON e.child = t.source
  WHERE t.parent_key IS NOT NULL AND {in_scope_sql}
  UNION
  SELECT e.parent, t.parent_key
  FROM up u JOIN edge e ON e.child = u.source
  JOIN lc_record_tag t ON t.source = u.source AND t.record_key = u.record_key
  WHERE t.parent_key IS NOT NULL
),
exposed AS (
  SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, r.person, 'direct' AS exposure
  FROM lc_subject_ref r
  WHERE {refs_in_scope_sql}
  UNION ALL
  SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, r.person, 'linked'
  FROM (SELECT DISTINCT source, record_key FROM up) u
  JOIN lc_subject_ref r ON r.source = u.source AND r.record_key = u.record_key
  WHERE NOT r.free_text
),
refs AS (
  SELECT x.subject_hash, x.kind, x.source, x.record_key, x.field, x.free_text, x.exposure,
         COALESCE(x.person,
                  CASE WHEN NOT x.free_text THEN 'record:' || x.source || '/' || x.record_key
                       WHEN x.kind IN ('email', 'personnummer', 'phone', 'name_company') THEN x.kind || ':' || x.subject_hash
                       ELSE '' END) AS person
  FROM exposed x
)
