-- Breach scope: persons per processor customer (role = processor: the customer is controller
-- and must be told, Art. 33(2)): the exposed entries of records held for a customer. The
-- customer's records are found first (a record has a tag row per category) and joined to the
-- entries, so only the pairs (customer, person) are hashed.
{refs_sql},
held_for AS (
  SELECT DISTINCT t.source, t.record_key, t.controller
  FROM lc_record_tag t
  WHERE t.role = 'processor' AND t.source IN :ref_sources  -- the affected sources and their ancestors
)
SELECT customer, COUNT(*) AS persons
FROM (
  SELECT DISTINCT h.controller AS customer, x.person
  FROM refs x JOIN held_for h ON h.source = x.source AND h.record_key = x.record_key
  WHERE x.person <> ''
) pairs
GROUP BY customer
ORDER BY customer
