lc_digits({column})
