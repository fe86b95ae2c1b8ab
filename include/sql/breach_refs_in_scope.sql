-- The index entries (lc_subject_ref r) of the affected records, when the scope narrows a
-- source (a time window or a bucket prefix): those whose record's tag row of the entry's
-- category is in scope (include/sql/breach_in_scope.sql). A whole source needs no tag rows:
-- its entries are r.source IN :sources.
EXISTS (SELECT 1 FROM lc_record_tag t
        WHERE t.source = r.source AND t.record_key = r.record_key AND t.category = r.category
          AND {in_scope_sql})
