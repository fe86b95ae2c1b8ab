translate({column}, E' -+()./\t\n\r' || chr(160) || chr(8239) || chr(8211), '')
