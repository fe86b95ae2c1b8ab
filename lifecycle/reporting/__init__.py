"""What people read: the run report with charts, the compliance page's figures,
copies of artifacts in a bucket, and the tamper-evident audit trail.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "breach": ('BreachResult', 'BreachScope', 'parse_scope', 'scope_breach'),
    "audit": ('AuditCheck', 'append', 'audit_key', 'chain_head', 'environment_audit_key', 'rotate_key', 'verify'),
    "audit_export": ('AuditExport', 'export_audit_trail'),
    "compliance": ('compliance_summary',),
    "processing_record": ('ChangeThresholds', 'ProcessingRecordPaths', 'build_processing_record', 'compare_records',
                          'latest_processing_record', 'publish_processing_record', 'write_processing_record'),
    "report": ('ReportPaths', 'build_report', 'safe_file_name', 'summary_lines', 'write_report'),
    "sinks": ('ArtifactSink',),
})
