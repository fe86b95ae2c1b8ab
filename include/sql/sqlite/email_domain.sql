CASE WHEN instr({column}, '@') > 0 THEN substr({column}, instr({column}, '@') + 1) ELSE {column} END
