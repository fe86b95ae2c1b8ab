translate({column}, E' -+()./\t\n\r' || chr(160) || chr(8239) || chr(8211) || chr(173) || chr(8201) || chr(8208) || chr(8209) || chr(8722) || chr(65293), '')
