"""Nightly enforcement: the stored plan, its journaled execution, the Great Expectations
validation of the tag store, and the aggregate-only analytics counted before raw data is anonymised.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "aggregation": ('AggregationStats', 'aggregate_source', 'validate_aggregates'),
    "approval": ('GOES_AHEAD', 'ApprovalConfigError', 'ApprovalRecord', 'approval_timeout', 'approvers', 'decisions',
                 'plan_approval_text', 'record_decision', 'request_approval', 'withheld_stats'),
    "enforce": ('batch_ranges', 'enforce_source', 'merge_stats', 'partitionable', 'plan_batches'),
    "plan": ('build_plan', 'inherit_parent_clocks', 'reference_pairs', 'register_run', 'summarise_plan'),
    "validation": ('validate_tag_store',),
})
