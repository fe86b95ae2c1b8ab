SUBSTRING_INDEX({column}, '/', 1)
