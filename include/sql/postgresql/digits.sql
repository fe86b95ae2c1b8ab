translate({column}, ' -+()./' || chr(160), '')
