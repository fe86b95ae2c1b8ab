split_part({column}, '/', 1)
