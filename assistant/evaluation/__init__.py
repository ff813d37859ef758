"""Evaluation suites on answer quality.

- ``suites``: the YAML/CSV suite format, validated with errors that name item and line.
- ``metrics``: deterministic metrics as pure functions (retrieval, correctness, citations,
  faithfulness proxy, refusals, latency).
- ``judge``: optional LLM-judged scores through the configured backend (off by default).
- ``runner``: ``run_eval(...)`` runs a suite and stores the run in ``settings.runs_dir``.
- ``compare`` / ``report``: per-item changes between runs; Markdown and HTML with plots.

Import from the submodules, so that importing the metrics stays light (no model, no store).
"""
