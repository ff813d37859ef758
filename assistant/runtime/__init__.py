"""What runs the model: the LLM backends (``llm``), the bundled GGUF files (``gguf``), the system
check (``doctor``) and first-run set-up (``first_run``)."""
