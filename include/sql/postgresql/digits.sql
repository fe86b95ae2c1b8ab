regexp_replace({column}, '[^0-9]', '', 'g')
