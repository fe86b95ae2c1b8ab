-- Active categories whose deadline falls within the coming window (for reports).
SELECT source, COUNT(*) AS tags
FROM lc_record_tag
WHERE status = 'active' AND deadline >= :from_date AND deadline < :until_date
GROUP BY source
