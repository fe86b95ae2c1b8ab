-- Breach scope: how many persons (see breach_refs.sql for who counts as one), with records of
-- their own, only named in free text, or only owning affected records through references.
-- The stored person label makes this one hash aggregate over the exposed entries.
{refs_sql},
people AS (
  SELECT person, MAX(CASE WHEN exposure = 'direct' AND NOT free_text THEN 1 ELSE 0 END) AS own,
         MAX(CASE WHEN exposure = 'linked' THEN 1 ELSE 0 END) AS linked
  FROM refs WHERE person <> ''
  GROUP BY person
)
SELECT COUNT(*) AS persons, COALESCE(SUM(own), 0) AS with_own_records,
       COALESCE(SUM(CASE WHEN own = 0 AND linked = 0 THEN 1 ELSE 0 END), 0) AS only_mentioned,
       COALESCE(SUM(CASE WHEN own = 0 AND linked = 1 THEN 1 ELSE 0 END), 0) AS only_linked
FROM people
