-- Breach scope: persons per processor customer (role = processor: the customer is controller
-- and must be told, Art. 33(2)): the exposed entries of records held for a customer. A record's
-- tag rows share its role and controller: its first row stands for it (rows from before
-- first_of_record existed all do; the distinct pairs below absorb the repeats), a plain scan
-- the planner can hash, so only the pairs (customer, person) are grouped.
{refs_sql},
held_for AS (
  SELECT t.source, t.record_key, t.controller
  FROM lc_record_tag t
  WHERE t.role = 'processor' AND t.first_of_record IS NOT FALSE
    AND t.source IN :ref_sources  -- the affected sources and their ancestors
)
SELECT customer, COUNT(*) AS persons
FROM (
  SELECT DISTINCT h.controller AS customer, x.person
  FROM refs x JOIN held_for h ON h.source = x.source AND h.record_key = x.record_key
  WHERE x.person <> ''
) pairs
GROUP BY customer
ORDER BY customer
