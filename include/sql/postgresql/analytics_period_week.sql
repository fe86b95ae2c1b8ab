CAST(date_trunc('week', {column}) AS DATE)
