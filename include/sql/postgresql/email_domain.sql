CASE WHEN strpos({column}, '@') > 0 THEN substr({column}, strpos({column}, '@') + 1) ELSE {column} END
