replace(replace(replace(replace(replace(replace(replace({column}, ' ', ''), '-', ''), '+', ''), '(', ''), ')', ''), '.', ''), '/', '')
