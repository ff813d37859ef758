"""Chat with sources: a question becomes a cited answer (``chat``), from the sentences that matter
(``passages``), a versioned prompt (``prompts``) and a check of every citation (``citations``)."""
