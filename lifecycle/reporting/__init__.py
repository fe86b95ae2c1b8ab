"""What people read: the run report with charts, the compliance page's figures,
copies of artifacts in a bucket, and the tamper-evident audit trail.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "audit": ('AuditCheck', 'append', 'audit_key', 'chain_head', 'environment_audit_key', 'rotate_key', 'verify'),
    "compliance": ('compliance_summary',),
    "report": ('ReportPaths', 'build_report', 'safe_file_name', 'summary_lines', 'write_report'),
    "sinks": ('ArtifactSink',),
})
