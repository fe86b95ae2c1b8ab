-- Breach scope: the contact list (Art. 34) for the protected folder only: each exposed keyed
-- identifier, the person it belongs to, and where it sits. Keyed hashes and record keys only.
{refs_sql}
SELECT person, subject_hash, kind, source, record_key, field,
       CASE WHEN free_text THEN 'free_text' ELSE 'structured' END AS place, exposure
FROM refs  -- in the order the index is read: no sort of its own
