"""What people read: the run report with charts, the compliance page's figures, and
copies of artifacts in a bucket.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "compliance": ('compliance_summary',),
    "report": ('ReportPaths', 'build_report', 'safe_file_name', 'summary_lines', 'write_report'),
    "sinks": ('ArtifactSink',),
})
