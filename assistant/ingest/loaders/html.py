"""HTML -> text: the article, without page chrome, scripts or elements a reader cannot see.

Hidden elements (``hidden``, ``aria-hidden="true"``, inline ``display:none`` or
``visibility:hidden``) are dropped like scripts: text a person never sees on the page must
not reach the index (a cheap layer against prompt injection; CSS classes are not resolved).
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from ...config import IngestSettings
from ...types import Page, ParsedDoc
from .base import decode_text, heading

_HEADING = re.compile(r"h[1-6]")
_HIDDEN_STYLE = re.compile(r"(?:^|[;\s])(?:display:none|visibility:(?:hidden|collapse))(?:$|[;!\s])")


def hidden(attrs: list[tuple[str, str | None]]) -> bool:
    """Whether an element with these attributes is not rendered (or only for no one)."""
    for name, value in attrs:
        value = (value or "").strip().lower()
        if name == "hidden" and value != "until-found":      # until-found: a collapsed section
            return True
        if name == "aria-hidden" and value == "true":
            return True
        if name == "style" and _HIDDEN_STYLE.search(re.sub(r"\s*([:;!])\s*", r"\1", value)):
            return True
    return False


class _HTMLText(HTMLParser):
    DROP = {"script", "style", "nav", "aside", "noscript", "template", "svg", "iframe", "object",
            "embed", "button", "select", "head"}
    CHROME = {"header", "footer"}        # page chrome, unless inside the article itself
    BLOCK = {"p", "div", "section", "article", "main", "ul", "ol", "table", "tr", "blockquote",
             "pre", "dl", "dt", "dd", "figure", "figcaption", "address", "br", "hr", "li"}
    # the HTML void elements: no content, no end tag, so never pushed on the stack
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
            "track", "wbr"}
    # HTML's implied end tags: a start tag closes the last open element of the first set unless an
    # element of the second set was opened after it (<p hidden>x<div>: the div is not hidden)
    IMPLIED = {"li": ({"li"}, {"ul", "ol"}), "dt": ({"dt", "dd"}, {"dl"}), "dd": ({"dt", "dd"}, {"dl"}),
               "tr": ({"tr"}, {"table"}), "td": ({"td", "th"}, {"table"}), "th": ({"td", "th"}, {"table"}),
               "option": ({"option"}, {"select"})}
    P_CLOSERS = {"address", "article", "aside", "blockquote", "details", "div", "dl", "fieldset",
                 "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
                 "hgroup", "hr", "main", "menu", "nav", "ol", "p", "pre", "section", "table", "ul"}
    P_SCOPE = ({"p"}, {"table", "td", "th", "button", "object", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        # open elements and, per tag, their positions in it (amortised O(1) even for 100k-deep pages)
        self.stack: list[str] = []
        self.pos: dict[str, list[int]] = {}
        self.skip_at: int | None = None      # stack index of the dropped element we are inside
        self.heading: list[str] | None = None
        self.level = 0
        self.title = ""
        self.in_title = False
        self.first_h1 = ""

    def last(self, tags: set[str]) -> int:
        return max((self.pos[t][-1] for t in tags if self.pos.get(t)), default=-1)

    def cut(self, at: int) -> None:
        """Close the element at stack index ``at`` and everything opened inside it."""
        for tag in self.stack[at:]:
            self.pos[tag].pop()
        del self.stack[at:]
        if self.skip_at is not None and at <= self.skip_at:
            self.skip_at = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title" and not self.title:    # not an <svg><title>
            self.in_title = True
        if tag == "body" and self.skip_at is not None:
            self.cut(self.skip_at)               # an unclosed <head> must not swallow the page
        closes, scope = self.P_SCOPE if tag in self.P_CLOSERS else self.IMPLIED.get(tag, (None, None))
        if closes and (at := self.last(closes)) > self.last(scope):
            self.cut(at)
        skipping = self.skip_at is not None
        drop = skipping or tag in self.DROP or (tag in self.CHROME and not self.in_content()) or hidden(attrs)
        if tag not in self.VOID:
            self.pos.setdefault(tag, []).append(len(self.stack))
            self.stack.append(tag)
            if drop and not skipping:
                self.skip_at = len(self.stack) - 1
        if drop:
            return
        if _HEADING.fullmatch(tag):
            self.heading, self.level = [], int(tag[1])
        elif tag == "li":
            self.newlines(1)
            self.out.append("- ")
        elif tag in ("td", "th"):
            self.out.append(" | ")
        elif tag in self.BLOCK and not (self.out and self.out[-1] == "- "):
            self.newlines(2 if tag == "p" else 1)

    def in_content(self) -> bool:
        return bool(self.pos.get("article") or self.pos.get("main"))

    def newlines(self, n: int) -> None:
        """Block boundaries nest (</li></ul></div>): ask for n line breaks, don't add them up."""
        if not self.out:
            return
        tail = "".join(self.out[-4:])
        have = tail[len(tail.rstrip(" \n")):].count("\n")
        if have < n:
            self.out.append("\n" * (n - have))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        skipping = self.skip_at is not None
        if self.pos.get(tag) and tag not in ("html", "body"):   # browsers ignore early </body>
            self.cut(self.pos[tag][-1])          # also closes elements left open inside it
        if skipping:
            return
        if self.heading is not None and _HEADING.fullmatch(tag):
            text = " ".join("".join(self.heading).split())
            if text:
                self.newlines(2)
                self.out.append(heading(self.level, text))
                self.newlines(2)
                if self.level == 1 and not self.first_h1:
                    self.first_h1 = text
            self.heading = None
        elif tag in self.BLOCK:
            self.newlines(2 if tag == "p" else 1)

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif self.skip_at is not None:
            return
        elif self.heading is not None:
            self.heading.append(data)
        else:
            self.out.append(re.sub(r"\s+", " ", data))


def load_html(path: Path, settings: IngestSettings) -> ParsedDoc:
    data = path.read_bytes()
    m = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", data[:4096], re.I)
    parser = _HTMLText()
    parser.feed(decode_text(data, m.group(1).decode("ascii") if m else None))
    parser.close()
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", "".join(parser.out))
    text = re.sub(r"(?m)^\| ", "", text)
    title = " ".join(parser.title.split()) or parser.first_h1
    return ParsedDoc(source=str(path), title=title, pages=[Page(None, text)])
