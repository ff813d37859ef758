"""Pilot Assistant: a sovereign RAG and drafting assistant for municipal innovation staff.

The telemetry switches are applied on import, before any third-party package loads.
"""
from . import sovereign as _sovereign  # noqa: F401  (side effect: telemetry off)

__version__ = "0.1.0"
