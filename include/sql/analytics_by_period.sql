-- Published analytics per source and period: the compliance page's chart. Counts only.
SELECT source, period, period_start, SUM(visitors) AS visitors, SUM(visits) AS visits, COUNT(*) AS group_count,
       MAX(min_group_size) AS k
FROM lc_analytics_aggregate
GROUP BY source, period, period_start
ORDER BY source, period_start
