"""Data-protection promises kept across packages: a person's erasure, retention of drafts
and exports, and where exported files live.

``erase_person`` removes conversations, drafts, exports and uploads (with their vectors)
of one person and leaves one audit entry; ``retention.start`` purges what is older than
``serve.history_retention_days`` (exports after ``EXPORT_TTL_S``).
"""
