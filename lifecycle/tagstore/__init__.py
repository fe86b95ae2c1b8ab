"""The pipeline's own store: tag, plan, journal and index tables, engines, SQL files and the
per-source guards.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "db": ('lock_source', 'make_engine', 'mysql_url', 'open_tag_store'),
    "loading": ('PARTITIONED', 'Upgrade', 'create_partition', 'finish_load', 'forget_loaded', 'is_partitioned', 'load_table', 'start_load', 'up_to_date', 'upgrade_store'),
    "locks": ('source_guard',),
    "sqlfiles": ('load_sql', 'quote_identifier', 'statement'),
    "tables": ('BYTEWISE', 'PlanAction', 'RequestAction', 'TagStatus', 'approval', 'audit_log', 'index_key', 'journal', 'key_stage', 'object_state', 'plan_item', 'record_tag', 'request_action', 'request_step', 'review_item', 'run', 'schema_finding', 'store_metadata', 'subject_ref', 'subject_ref_build', 'subject_request', 'suppression', 'watermark'),
})
