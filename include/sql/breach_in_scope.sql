-- The scope of a breach, as a condition on lc_record_tag t (shared by every breach_*.sql): the
-- affected sources, the window on the retention clock (undated records stay in), and, for sources
-- named only through a bucket prefix, the records of the objects whose key starts with it.
t.source IN :sources
    AND (t.clock_value IS NULL OR (t.clock_value >= :from_date AND t.clock_value <= :to_date))
    AND (t.source NOT IN :prefix_sources OR EXISTS (
          SELECT 1 FROM lc_object_state o
          WHERE o.source = t.source AND o.object_ref = {object_ref_sql}
            AND substr(o.object_key, 1, :key_prefix_length) = :key_prefix))
