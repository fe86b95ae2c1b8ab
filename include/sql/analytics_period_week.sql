date({column}, '-6 days', 'weekday 1')
