-- Breach scope, part of breach_refs.sql when an affected source has parents (catalog
-- subject.via): from each affected record up the parent_key chain (edge: child source ->
-- parent source) to its ancestors: the orders of order lines, the customers of orders.
edge(child, parent) AS (
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
