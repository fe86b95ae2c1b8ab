CAST({column} AS DATE)
