substr({column}, 1, instr({column}, '/') - 1)
