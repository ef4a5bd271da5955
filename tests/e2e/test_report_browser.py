"""The HTML reports in a real browser: headless Chromium, driven over the DevTools protocol
(tests/support/browser.py), loads each report — a backtest's journal, a paper run's journal, a
sweep's results file, a walk-forward, two runs compared, and `sq backtest --report` — and the
test asserts that the page loads without a console error or an uncaught exception, fetches
nothing from a network, draws every plotly chart with data in it, and that a screenshot of a
chart is not blank.

Chromium is /usr/bin/chromium (`make test` installs it when missing). Without it this test
fails — unless SQ_ALLOW_NO_BROWSER=1, which skips it (a machine that cannot install it)."""

from __future__ import annotations

import os

import pytest

from tests.support.browser import Browser, chromium_path, colour_stats
from tests.support.resultsfiles import report_inputs

if chromium_path() is None:
    if os.environ.get("SQ_ALLOW_NO_BROWSER") == "1":
        pytest.skip("no chromium (SQ_ALLOW_NO_BROWSER=1)", allow_module_level=True)

CHARTS_DRAWN = """(() => {
  const divs = document.querySelectorAll('div.chart');
  const plots = document.querySelectorAll(".js-plotly-plot");
  const drawn = [...plots].filter(p => p._fullLayout && p.querySelector('.main-svg'));
  return divs.length > 0 && drawn.length === divs.length ? drawn.length : 0;
})()"""

TRACES = """[...document.querySelectorAll('.js-plotly-plot')].map(p => ({
  title: (p.layout.title || {}).text || '',
  traces: p._fullData.length,
  points: p._fullData.reduce((n, t) => n + ((t.x && t.x.length) || (t.z && t.z.length) || (t.y && t.y.length) ||
                                       (t.dimensions && t.dimensions.length) || 0), 0),
}))"""

FIRST_CHART = """(() => { const r = document.querySelector('.js-plotly-plot').getBoundingClientRect();
  return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height}; })()"""


@pytest.fixture(scope="module")
def browser():
    assert chromium_path(), "chromium is not installed (make test installs it; SQ_ALLOW_NO_BROWSER=1 skips this test)"
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from tests.support.process import SqRunner

    return report_inputs(SqRunner(), tmp_path_factory.mktemp("report-inputs"))


def render(sq, tmp_path, *args: str):
    out = tmp_path / "report.html"
    r = sq(["report", *map(str, args), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    return out


def load(browser: Browser, path) -> list[dict]:
    """Open the report; check it drew, errs not and fetched nothing; the charts' titles and sizes."""
    page = browser.open(path.resolve().as_uri())
    page.wait_for(CHARTS_DRAWN, timeout=180)
    charts = page.evaluate(TRACES)
    png = page.screenshot(page.evaluate(FIRST_CHART))
    colours, ink = colour_stats(png)
    log = page.collect()
    assert log.errors == [], log.errors
    assert log.remote_requests == [], log.remote_requests
    assert colours > 20 and ink > 0.02, (colours, ink)  # a drawn chart: axes, lines, markers, not one flat colour
    for c in charts:
        assert c["traces"] > 0 and c["points"] > 0, c
    return charts


def titles(charts: list[dict]) -> list[str]:
    return [c["title"] for c in charts]


def test_a_backtest_journal(browser, inputs, sq, tmp_path):
    charts = load(browser, render(sq, tmp_path, inputs["bt"]))
    assert titles(charts) == ["Equity and drawdown", "Position per symbol", "SIM:DEMO: price, fills and quotes",
                              "Markouts: mean move of the mid in the fill's favour"]
    price = charts[2]
    assert price["traces"] == 5  # mid, bid quotes, ask quotes, buy fills, sell fills


def test_a_paper_journal(browser, inputs, sq, tmp_path):
    charts = load(browser, render(sq, tmp_path, inputs["paper"]))
    assert titles(charts)[:3] == ["Equity and drawdown", "Position per symbol", "SIM:DEMO: price, fills and quotes"]


def test_two_runs_compared(browser, inputs, sq, tmp_path):
    charts = load(browser, render(sq, tmp_path, inputs["bt"], inputs["bt2"]))
    by = {c["title"]: c for c in charts}
    assert by["Equity and drawdown"]["traces"] == 4  # each run's equity and drawdown
    assert by["Markouts: mean move of the mid in the fill's favour"]["traces"] == 2  # one line per run
    assert sum(t.endswith("price, fills and quotes") for t in by) == 2


def test_a_sweep(browser, inputs, sq, tmp_path):
    assert titles(load(browser, render(sq, tmp_path, inputs["sweep"]))) == ["total PnL over clip × threshold"]


def test_a_sweep_of_three_parameters(browser, inputs, sq, tmp_path):
    charts = load(browser, render(sq, tmp_path, inputs["sweep3"]))
    assert len(charts) == 2 and charts[0]["title"] == "total PnL over clip × threshold (mean over the other parameter)"
    assert charts[1]["title"] == "Every grid point: parameters and total PnL"


def test_a_walk_forward(browser, inputs, sq, tmp_path):
    assert titles(load(browser, render(sq, tmp_path, inputs["wfo"]))) == [
        "sharpe per fold: in-sample vs out-of-sample", "Stitched out-of-sample equity", "Parameters chosen per fold"]


def test_backtest_report_option(browser, inputs, sq, tmp_path):
    out = tmp_path / "bt.html"
    r = sq(["backtest", "-s", "mm", str(inputs["data"]), "--report", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    assert len(load(browser, out)) == 4


def test_the_harness_sees_errors_and_requests(browser, tmp_path):
    """The checks above can fail: a page that throws, logs an error and fetches a URL is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                   '<script>console.error("boom"); throw new Error("uncaught")</script></body></html>')
    page = browser.open(bad.resolve().as_uri())
    page.wait_for("document.readyState === 'complete'")
    browser.pump(1.0)
    log = page.collect()
    assert any("boom" in e for e in log.console_errors), log
    assert any("uncaught" in e for e in log.exceptions), log
    assert log.remote_requests == ["http://127.0.0.1:9/x.png"], log.requests
