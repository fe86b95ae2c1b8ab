-- The earliest date of an analytics source: where its first aggregation starts.
SELECT MIN({date_column}) FROM {table}
