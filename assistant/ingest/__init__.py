"""From files to indexed chunks: format ``loaders`` run in a limited ``sandbox``, ``chunking``
keeps page boundaries, the ``pipeline`` embeds and stores; ``uploads`` from the web UI."""
