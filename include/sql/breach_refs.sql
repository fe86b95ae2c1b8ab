-- Breach scope, the common part of breach_persons.sql and breach_contacts.sql (a fragment: it
-- defines the CTE "refs", every identifier the breach exposes or reaches):
--   direct: the index entries of the affected records;
--   linked: people who own affected records through foreign keys (an order, its lines, a
--           ticket: catalog subject.via): from each affected record up the parent_key chain
--           (edge: child source -> parent source) to its ancestors, and their structured
--           identifiers (their own records, not mentions in their free text).
-- Each row carries the record's person: its primary structured identifier (kind:hash), e-mail
-- before personnummer before phone before name at a company (e-mail first: the identifier most
-- sources share, so one person's records agree on it); a record with a name alone is a person
-- of its own; a mention in free text is the person it names.
WITH RECURSIVE edge(child, parent) AS (
  {edges_sql}
),
scoped AS (
  SELECT t.source, t.record_key, t.category, t.role, t.controller, t.parent_key
  FROM lc_record_tag t
  WHERE {in_scope_sql}
),
up(source, record_key) AS (
  -- From lc_record_tag again rather than from "scoped": a CTE named once is inlined (PostgreSQL
  -- materialises one named twice, and then joins it without an index).
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
  SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, s.role, s.controller,
         'direct' AS exposure
  FROM scoped s
  JOIN lc_subject_ref r ON r.source = s.source AND r.record_key = s.record_key AND r.category = s.category
  UNION ALL
  SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, t.role, t.controller, 'linked'
  FROM (SELECT DISTINCT source, record_key FROM up) u
  JOIN lc_subject_ref r ON r.source = u.source AND r.record_key = u.record_key
  JOIN lc_record_tag t ON t.source = r.source AND t.record_key = r.record_key AND t.category = r.category
  WHERE NOT r.free_text
),
refs AS (
  SELECT x.*,
         CASE WHEN x.free_text THEN
                CASE WHEN x.kind IN ('personnummer', 'email', 'phone', 'name_company') THEN x.kind || ':' || x.subject_hash END
              ELSE COALESCE(
                substr(MIN(CASE WHEN NOT x.free_text THEN
                             CASE x.kind WHEN 'email' THEN '1' WHEN 'personnummer' THEN '2' WHEN 'phone' THEN '3'
                                         WHEN 'name_company' THEN '4' END || x.kind || ':' || x.subject_hash END)
                       OVER (PARTITION BY x.source, x.record_key, x.exposure), 2),
                CASE WHEN MAX(CASE WHEN NOT x.free_text AND x.kind = 'name' THEN 1 ELSE 0 END)
                            OVER (PARTITION BY x.source, x.record_key, x.exposure) = 1
                     THEN 'record:' || x.source || '/' || x.record_key END)
         END AS person
  FROM exposed x
)
