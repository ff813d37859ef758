"""Page images for the page viewer come from a limited worker: a page that would render for
minutes is cut off by ``serve.render_timeout_s`` while this process goes on."""
from __future__ import annotations

import io
import threading
import time

import pytest

from assistant.ingest.loaders import LoadError
from assistant.ingest.render import MAX_RENDER_PX, render_page
from tests.filemakers import make_pdf, make_slow_render_pdf


def test_a_page_renders_to_a_bounded_png(bare_settings, tmp_path):
    from PIL import Image

    pdf = make_pdf(tmp_path / "a.pdf", ["Seite eins", "Seite zwei mit Text"])
    data = render_page(pdf, 2, bare_settings)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and max(image.size) <= MAX_RENDER_PX
    with pytest.raises(LoadError, match="Seite 3"):
        render_page(pdf, 3, bare_settings)


def test_a_hanging_page_is_cut_off_while_this_process_keeps_working(bare_settings, tmp_path):
    bare_settings.serve.render_timeout_s = 2
    slow = make_slow_render_pdf(tmp_path / "slow.pdf", "Die Turnhallensanierung kostet 55.555 Euro.")
    ticks = []
    stop = threading.Event()

    def heartbeat():   # this process must not be blocked while the worker renders
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.05)

    t = threading.Thread(target=heartbeat)
    t.start()
    try:
        with pytest.raises(LoadError, match="Zeitlimit"):
            render_page(slow, 1, bare_settings)
    finally:
        stop.set()
        t.join()
    assert len(ticks) > 10
