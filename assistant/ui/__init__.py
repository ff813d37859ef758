"""The Gradio web UI ("Pilot-Assistent"), in German.

The only place that imports gradio. It holds no product logic: every handler calls
core functions (chat, ingest, store, history, auth) and only turns their results and
errors into components. ``app.build_app`` assembles the tabs; each tab lives in its
own module with ``TITLE`` and ``build(ctx)``.
"""
