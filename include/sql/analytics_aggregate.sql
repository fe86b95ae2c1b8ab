-- An analytics source's records of the complete periods from from_date up to until_date, counted
-- per period and group in one pass. A group of fewer than k distinct visitors keeps no name of
-- its own: its records fall into group_value NULL ("other"); merged_groups says how many groups a
-- row holds. Visitors are counted distinct here, inside the database: only counts leave it, and
-- the caller stores only rows of at least k visitors. An empty group value: company unknown.
-- The period start is analytics_period_<day|week>.sql applied to the date column.
-- (No colon-prefixed names in these comments: they would be read as bind parameters.)
WITH visit AS (
  SELECT {period_start_sql} AS period_start,
         COALESCE(CAST({group_column} AS VARCHAR(200)), '') AS group_value,
         {visitor_column} AS visitor
  FROM {table}
  WHERE {date_column} >= :from_date AND {date_column} < :until_date
),
grouped AS (
  SELECT period_start, group_value, COUNT(DISTINCT visitor) AS visitors
  FROM visit
  GROUP BY period_start, group_value
),
labelled AS (
  SELECT v.period_start, v.visitor, v.group_value AS own_group,
         CASE WHEN g.visitors >= :k THEN v.group_value END AS group_value
  FROM visit v
  JOIN grouped g ON g.period_start = v.period_start AND g.group_value = v.group_value
)
SELECT period_start, group_value, COUNT(DISTINCT visitor) AS visitors, COUNT(*) AS visits,
       COUNT(DISTINCT own_group) AS merged_groups
FROM labelled
GROUP BY period_start, group_value
ORDER BY period_start, group_value
