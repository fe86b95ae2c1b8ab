-- Breach scope, the common part of breach_persons.sql, breach_processor_persons.sql and
-- breach_contacts.sql (a fragment: it defines the CTE "refs", every identifier the breach
-- exposes or reaches):
--   direct: the index entries of the affected records (breach_refs_in_scope.sql: by source alone
--           when the whole source is affected, else the entries whose tag row is in scope);
--   linked: people who own affected records through foreign keys: breach_refs_parents.sql and
--           breach_refs_linked.sql, spliced in only when an affected source has a parent (the
--           union costs a third of a query over a million entries).
-- Each row carries its person, labelled at scan time (lifecycle.discovery.label_persons): the
-- record's own person for a structured entry, the person named for a mention, '' for nobody.
-- Entries indexed before the label existed (NULL) count as the person they name (mentions) or
-- as a person per record: too many rather than too few.
WITH RECURSIVE {parents_sql}
exposed AS (
  SELECT r.subject_hash, r.kind, r.source, r.record_key, r.field, r.free_text, r.person, 'direct' AS exposure
  FROM lc_subject_ref r
  WHERE {refs_in_scope_sql}
  {linked_sql}
),
refs AS (
  SELECT x.subject_hash, x.kind, x.source, x.record_key, x.field, x.free_text, x.exposure,
         COALESCE(x.person,
                  CASE WHEN NOT x.free_text THEN 'record:' || x.source || '/' || x.record_key
                       WHEN x.kind IN ('email', 'personnummer', 'phone', 'name_company') THEN x.kind || ':' || x.subject_hash
                       ELSE '' END) AS person
  FROM exposed x
)
