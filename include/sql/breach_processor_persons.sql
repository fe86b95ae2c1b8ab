-- Breach scope: persons per processor customer (role = processor: the customer is controller
-- and must be told, Art. 33(2)): the exposed entries of records held for a customer.
{refs_sql}
SELECT t.controller AS customer, COUNT(DISTINCT x.person) AS persons
FROM refs x
JOIN lc_record_tag t ON t.source = x.source AND t.record_key = x.record_key
WHERE t.role = 'processor' AND x.person <> ''
GROUP BY t.controller
ORDER BY t.controller
