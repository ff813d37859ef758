"""Drafts of council papers and funding applications, section by section: the pipeline (``runner``),
the draft on disk (``record``), computed facts (``facts``), post-processing (``finish``), templates
(``templates``, ``form_import``) and the exports (``export``)."""
