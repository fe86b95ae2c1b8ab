date({column})
