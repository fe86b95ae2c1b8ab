-- Record of processing (GDPR art. 30), measured facts: what the tag store holds per role,
-- controller, activity, category, source and lawful basis. A category whose personal fields were
-- anonymised no longer holds personal data: counted apart, left out of records and oldest clock.
SELECT role, controller, activity, category, source, COALESCE(lawful_basis, '(none)') AS lawful_basis,
       SUM(CASE WHEN status <> 'anonymised' THEN 1 ELSE 0 END) AS records,
       SUM(CASE WHEN status = 'anonymised' THEN 1 ELSE 0 END) AS anonymised,
       SUM(CASE WHEN status = 'violation' THEN 1 ELSE 0 END) AS violations,
       SUM(CASE WHEN status = 'restricted' THEN 1 ELSE 0 END) AS restricted,
       -- kept under a legal obligation: by its basis, or held back from an erasure (Bokföringslagen)
       SUM(CASE WHEN status <> 'anonymised' AND (lawful_basis = 'legal_obligation' OR status = 'held')
                THEN 1 ELSE 0 END) AS legal_obligation,
       MIN(CASE WHEN status <> 'anonymised' THEN clock_value END) AS oldest_clock
FROM lc_record_tag
GROUP BY role, controller, activity, category, source, COALESCE(lawful_basis, '(none)')
ORDER BY role, controller, activity, category, source, lawful_basis
