-- An analytics source's records of the complete periods from from_date up to until_date, counted
-- per period and group. A group of fewer than k distinct visitors keeps no name of its own: its
-- records fall into group_value NULL ("other"); merged_groups says how many groups a row holds.
-- Visitors are counted distinct here, inside the database: only counts leave it, and the caller
-- stores only rows of at least k visitors. An empty group value: company unknown. A visitor
-- that is NULL (already anonymised) counts as a visit, not as a visitor.
-- No join: one row per group and visitor, whose count over the group is its visitors (a window),
-- so the plan stays sorts and aggregates even on a table without statistics.
-- The period start is analytics_period_<day|week>.sql applied to the date column.
-- (No colon-prefixed names in these comments: they would be read as bind parameters.)
WITH visit AS (
  SELECT {period_start_sql} AS period_start,
         COALESCE({group_sql}, '') AS group_value,
         {visitor_column} AS visitor
  FROM {table}
  WHERE {date_column} >= :from_date AND {date_column} < :until_date
),
group_visitor AS (
  SELECT period_start, group_value, visitor, COUNT(*) AS visits
  FROM visit
  GROUP BY period_start, group_value, visitor
),
labelled AS (
  SELECT period_start, group_value, visitor, visits,
         CASE WHEN COUNT(visitor) OVER (PARTITION BY period_start, group_value) >= :k THEN group_value END AS label
  FROM group_visitor
)
SELECT period_start, label AS group_value, COUNT(DISTINCT visitor) AS visitors, SUM(visits) AS visits,
       COUNT(DISTINCT group_value) AS merged_groups
FROM labelled
GROUP BY period_start, label
ORDER BY period_start, label
