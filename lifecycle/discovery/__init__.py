"""Finding people in data: identifier detection and normalisation, keyed hashes, the scan
that tags every record (in key-range partitions for large tables), the subject index and its key
identity, redaction of mentions.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "detect": ('Finding', 'REDACTED', 'parse_identity_number', 'parse_swedish_phone', 'find_identifiers', 'redact', 'INVISIBLE', 'LOOK_ALIKES'),
    "identifiers": ('SubjectHasher', 'normalise_email', 'normalise_personnummer', 'normalise_phone', 'normalise_text', 'normaliser'),
    "keys": ('check_keys', 'ensure_installation_key', 'record_key_identity', 'source_scope'),
    "redaction": ('mentions', 'name_pattern', 'name_search_term', 'name_spans', 'person_in_text', 'person_patterns', 'person_spans', 'redact_text'),
    "partitions": ('Partition', 'PartitionsIncompleteError', 'finish_partitions', 'key_ranges', 'plan_partitions', 'run_partition', 'scan_partitioned'),
    "scan": ('ChunkWriter', 'RangeScan', 'ScanPlan', 'ScanStats', 'REF_COLUMNS', 'TAG_COLUMNS', 'Tagger', 'Tally', 'add_stats', 'analyze', 'begin_scan', 'check_anonymisable', 'choose_mode', 'collector_paused', 'count_into', 'finish_scan', 'key_state', 'record_findings', 'ref_dict', 'ref_row', 'refresh_refs', 'save_watermark', 'scan_range', 'scan_source', 'schema_drift', 'swap_in_index', 'tag_dict', 'tag_row', 'watermark_text', 'write_refs', 'write_tags'),
    "subjects": ('Location', 'PERSON_KINDS', 'label_persons', 'locate', 'mentioned_person', 'own_person'),
})
