DELETE FROM {table} WHERE {primary_key} IN :keys
