CASE WHEN LOCATE('@', {column}) > 0 THEN SUBSTRING({column}, LOCATE('@', {column}) + 1) ELSE {column} END
