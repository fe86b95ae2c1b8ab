UPDATE {table} SET {assignments_sql} WHERE {primary_key} IN :keys
