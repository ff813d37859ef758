"""Funding programmes: the schema (``programmes``), the finder (``finder``, ``fit``), computed
figures (``finance``) and deadline calendars (``ics``)."""
