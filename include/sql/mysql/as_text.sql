CAST({column} AS CHAR(200))
