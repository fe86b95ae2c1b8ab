DATE({column})
