"""Reading an sq HTML report back: its tags and text (html.parser) and its plotly figures (the
JSON each inline `Plotly.newPlot` call draws)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

NEWPLOT = re.compile(r'Plotly\.newPlot\("(sq-chart-\d+)", ')


class Html(HTMLParser):
    """Tags, link attributes (src/href) of real tags, and the text outside scripts."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if not self._in_script:
            self.text.append(data)


def parse(path: str | Path) -> tuple[Html, str]:
    """The parsed page and its visible text."""
    p = Html()
    p.feed(Path(path).read_text())
    p.close()
    return p, "".join(p.text)


def figures(path: str | Path) -> list[dict]:
    """Every chart of the page as {"id", "data", "layout"}, in page order."""
    raw = Path(path).read_text()
    out = []
    dec = json.JSONDecoder()
    for m in NEWPLOT.finditer(raw):
        data, end = dec.raw_decode(raw, m.end())
        layout, _ = dec.raw_decode(raw, end + 2)
        out.append({"id": m.group(1), "data": data, "layout": layout})
    return out


def assert_self_contained(path: str | Path) -> None:
    """No tag loads anything (no src, no href), plotly.js is inline, and every chart div has its
    drawing call. (That the page fetches nothing when it runs: tests/e2e/test_report_browser.py.)"""
    p, _ = parse(path)
    raw = Path(path).read_text()
    assert not p.links, p.links
    assert "<link" not in raw and "@import" not in raw
    assert len(raw) > 3_000_000 and "Plotly.newPlot" in raw  # plotly.js itself (about 4.8 MB) is in the page
    assert raw.count('<div class="chart" id=') == len(figures(path)) > 0


def values(v) -> list:
    """A figure's array as a list: plotly writes NumPy arrays as {"dtype", "bdata" (base64), "shape"}."""
    import base64

    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if v.get("shape"):
            a = a.reshape([int(x) for x in str(v["shape"]).split(",")])
        return a.tolist()
    return list(v)
