"""Data-subject rights: validated requests and their ledger, erasure, access extracts,
consent withdrawal, objection and rectification, independent verification, certificates,
and the one dispatcher ``fulfil``.
"""

from lifecycle.surface import public_surface

__all__, __getattr__ = public_surface(__name__, {
    "approval": ('ApprovalMissingError', 'RequestPreview', 'SelfApprovalError', 'check_not_requester',
                 'four_eyes_types', 'needs_four_eyes', 'preview', 'review_text'),
    "dispatcher": ('SubjectRequest', 'Workspace', 'fulfil', 'fulfil_review'),
    "review": ('ReviewDecision', 'listed_items', 'pending'),
    "requests": ('SubjectIdentifiers', 'open_requests', 'validate_reference', 'validate_request_type'),
    "verify": ('Probe', 'SourceCheck', 'allowed_record', 'record_holds', 'record_names'),
})
