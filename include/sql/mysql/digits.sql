REGEXP_REPLACE({column}, '[^0-9]', '')
