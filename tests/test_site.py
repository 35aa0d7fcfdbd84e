"""The results site (`runge-bench site`): built from the smoke study's committed store and a
comparison, every page's links and images resolve (checked by parsing, always), and in a real
headless Chromium (Debian's, driven by Playwright; skipped, saying why, where either is missing):
every page loads with no console error and no failed request, a table sorts on click, the index
leads to a cell's worst run by clicks, figure tooltips name runs, and basic accessibility holds
(headings in order, alt text on every image, header cells, every link reachable by Tab)."""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag

import pytest
from typer.testing import CliRunner

from runge_bench.cli import app
from runge_bench.outputs import site as site_module
from runge_bench.outputs.benchlog import read_log

from .helpers import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own connections fail on a closed network; these keep it quiet (no request leaves the page).
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site of the smoke study, the same store never reported, and one comparison (the store
    against itself)."""
    tmp = tmp_path_factory.mktemp("site")
    results = tmp / "results"
    shutil.copytree(ROOT / "results" / "smoke", results / "smoke")
    (results / "bare").mkdir()  # a store never reported: no tables or figures committed beside it
    shutil.copy(ROOT / "results" / "smoke" / "runs.sqlite", results / "bare" / "runs.sqlite")
    (tmp / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "benchmarks.toml", tmp / "docs" / "benchmarks.toml")
    runner = CliRunner()
    compared = runner.invoke(
        app,
        [
            "compare",
            str(results / "smoke"),
            str(ROOT / "results" / "smoke"),
            "--out",
            str(results / "smoke" / "compare"),
        ],
    )
    assert compared.exit_code == 0, compared.output
    built = runner.invoke(app, ["site", str(results), "--out", str(tmp / "site")])
    assert built.exit_code == 0, built.output
    return tmp / "site"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.images: list[dict] = []
        self.headings: list[int] = []
        self.tables = self.header_cells = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag in ("img", "script") or (tag == "link" and a.get("rel") == "stylesheet"):
            self.images.append({"tag": tag, "src": a.get("src") or a.get("href"), "alt": a.get("alt")})
        elif len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            self.headings.append(int(tag[1]))
        elif tag == "table":
            self.tables += 1
        elif tag == "th":
            self.header_cells += 1


def _parsed(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text())
    return p


def test_every_page_links_and_shows_only_what_exists(site):
    pages = sorted(site.rglob("*.html"))
    assert {"index.html", "benchmarks.html"} <= {p.name for p in pages}
    assert any(p.parent.name == "cells" for p in pages) and any(p.parent.name == "comparisons" for p in pages)
    for page in pages:
        parsed = _parsed(page)
        for href in parsed.links + [i["src"] for i in parsed.images]:
            target, _ = urldefrag(href)
            assert not target.startswith(("http:", "https:", "//")), (page, href)  # offline: nothing outside
            if target:
                assert (page.parent / target).resolve().is_file(), (page, href)
        assert all(i["alt"] for i in parsed.images if i["tag"] == "img"), page  # alt text on every figure
        assert parsed.headings[0] == 1 and all(b <= a + 1 for a, b in zip(parsed.headings, parsed.headings[1:])), page
        assert parsed.header_cells >= parsed.tables, page  # every table has header cells


def test_the_site_is_written_whole_and_refuses_bad_input(site, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["site", str(tmp_path / "nothing"), "--out", str(tmp_path / "s")])
    assert missing.exit_code == 2 and "is not a directory of results" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["site", str(tmp_path / "empty"), "--out", str(tmp_path / "s")])
    assert empty.exit_code == 2 and "holds no study" in empty.output
    assert not (tmp_path / "s").exists()  # nothing half-written


def test_report_tables_link_each_row_to_its_cell(site):
    """A report table with a column per axis (smoke: activation) links each row to its cell."""
    study = (site / "studies" / "smoke" / "index.html").read_text()
    report = study[study.index('id="report"') :]
    links = re.findall(r'<td><a href="(cells/c\d+\.html)">(relu|tanh)</a></td>', report)
    assert len(links) >= 4 and {a for _, a in links} == {"relu", "tanh"}
    for href, activation in links:
        title = re.search(r"<h1>(.*?)</h1>", (site / "studies" / "smoke" / href).read_text())[1]
        assert title == f"smoke: activation={activation}", (href, title)


def test_a_store_never_reported_says_so_and_links_nothing_missing(site):
    page = (site / "studies" / "bare" / "index.html").read_text()
    assert "This store has no committed report" in page and "runge-bench report bare" in page
    assert 'href="tables/' not in page and "<img" not in page and "<h3>At a glance</h3>" in page


def test_workers_are_capped_to_the_memory_available(tmp_path, monkeypatch):
    """Each worker holds its imports and the store it reads: --jobs never asks for more than the
    machine has free, and says so when it caps."""
    need = site_module.WORKER_BASE_BYTES + site_module.WORKER_BYTES_PER_STORE_BYTE * 10**7
    assert site_module.site_jobs(4, 10**7, 10 * need) == (4, None) and site_module.site_jobs(4, 10**7, None) == (
        4,
        None,
    )
    jobs, note = site_module.site_jobs(4, 10**7, 2.5 * need)
    assert jobs == 2 and "4 at a time capped at 2" in note
    assert site_module.site_jobs(4, 10**7, 0.1 * need)[0] == 1  # one worker always: the build goes on, slowly
    shutil.copytree(ROOT / "results" / "smoke", tmp_path / "results" / "smoke")
    shutil.copytree(ROOT / "results" / "smoke", tmp_path / "results" / "smoke2")
    monkeypatch.setattr(site_module, "available_bytes", lambda: 1.5 * site_module.WORKER_BASE_BYTES)
    built = CliRunner().invoke(app, ["site", str(tmp_path / "results"), "--out", str(tmp_path / "s"), "--jobs", "2"])
    assert (
        built.exit_code == 0 and "2 at a time capped at 1" in built.output and "2 studies, 1 at a time" in built.output
    )


def test_the_performance_log_is_plotted_from_its_data(site):
    log = read_log(ROOT / "docs" / "benchmarks.toml")
    page = (site / "benchmarks.html").read_text()
    kinds = list(dict.fromkeys(e.benchmark for e in log if e.ratios))
    assert re.findall(r"<h2>(.*?)</h2>", page) == [*kinds, "Every entry"]
    assert page.count("<circle") == sum(len(e.ratios) for e in log)  # a point per ratio, each titled
    assert page.count("<tr>") == len(log) + 1


def test_a_broken_performance_log_is_refused_before_any_work(tmp_path):
    shutil.copytree(ROOT / "results" / "smoke", tmp_path / "results" / "smoke")
    bad = tmp_path / "log.toml"
    bad.write_text('[[measurement]]\ndate = 2026-12-05\nmachine = "m"\ncommand = "c"\n')
    out = CliRunner().invoke(app, ["site", str(tmp_path / "results"), "--out", str(tmp_path / "s"), "--log", str(bad)])
    assert out.exit_code == 2 and f"{bad}: measurement[0].result: is missing" in out.output
    assert not (tmp_path / "s").exists()


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    return sync_api


@pytest.fixture(scope="module")
def browser(site):
    sync_api = _browser()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, url: str):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


def test_every_page_loads_cleanly_in_chromium(site, browser):
    for path in sorted(site.rglob("*.html")):
        page, problems = _open(browser, path.as_uri())
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
        page.close()
        assert problems == [] and broken == 0, (path, problems)


def test_a_table_sorts_on_click(site, browser):
    page, _ = _open(browser, (site / "studies" / "smoke" / "cells" / "c0.html").as_uri())
    table = page.locator("table").last
    column = [h.strip() for h in table.locator("thead th").all_inner_texts()].index("f MSE (dense grid)")
    read = lambda: [float(t) for t in table.locator(f"tbody tr td:nth-child({column + 1})").all_inner_texts()]
    table.locator("thead th button").nth(column).click()
    assert read() == sorted(read())
    table.locator("thead th button").nth(column).click()
    assert read() == sorted(read(), reverse=True)
    page.close()


def test_a_table_filters_by_a_chosen_column(site, browser):
    page, _ = _open(browser, (site / "studies" / "smoke" / "index.html").as_uri())
    table = page.locator("#cells ~ table").first
    rows = table.locator("tbody tr")
    n = rows.count()
    page.locator("#filter-column-0").select_option(label="in cell")
    page.locator("#filter-0").fill("tanh")
    shown = [t for t, v in zip(rows.all_inner_texts(), [rows.nth(i).is_visible() for i in range(n)]) if v]
    assert shown and all("activation=tanh" in t for t in shown) and len(shown) < n
    page.locator("#filter-column-0").select_option(label="in runs")
    assert all(not rows.nth(i).is_visible() for i in range(n))  # no run count reads "tanh"
    page.close()


def test_clicks_lead_from_the_index_to_a_cells_worst_run(site, browser):
    page, problems = _open(browser, (site / "index.html").as_uri())
    page.get_by_role("link", name="smoke", exact=True).first.click()
    page.locator("#cells ~ table a").first.click()
    page.get_by_role("link", name="worst run").click()
    worst = page.locator("tr.worst")
    assert page.url.endswith("#" + worst.get_attribute("id"))
    assert worst.count() == 1 and problems == []
    page.close()


def test_figure_tooltips_name_runs(site, browser):
    page, _ = _open(browser, (site / "studies" / "smoke" / "index.html").as_uri())
    point = page.locator("svg circle[data-run]").first
    point.hover()
    tip = page.locator(".tooltip")
    assert tip.is_visible() and "run " in tip.inner_text() and "seed " in tip.inner_text()
    page.close()


def test_every_link_is_reachable_by_keyboard(site, browser):
    page, _ = _open(browser, (site / "studies" / "smoke" / "cells" / "c0.html").as_uri())
    links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    reached = set()
    for _ in range(len(links) + 40):  # the filter inputs and sort buttons take Tab stops too
        page.keyboard.press("Tab")
        href = page.evaluate("document.activeElement && document.activeElement.href")
        if href:
            reached.add(href)
    assert set(links) <= reached
    page.close()


@pytest.mark.skipif(
    not os.environ.get("RUNGE_BENCH_SCREENSHOTS"), reason="set RUNGE_BENCH_SCREENSHOTS=DIR to write them"
)
def test_screenshots(site, browser):
    """The README's screenshots: RUNGE_BENCH_SCREENSHOTS=docs python3 -m pytest tests/test_site.py -k screenshots."""
    out = Path(os.environ["RUNGE_BENCH_SCREENSHOTS"])
    for path, name in (
        (site / "index.html", "site-index.png"),
        (site / "studies" / "smoke" / "index.html", "site-study.png"),
        (site / "studies" / "smoke" / "cells" / "c1.html", "site-cell.png"),
    ):
        page, _ = _open(browser, path.as_uri())
        page.set_viewport_size({"width": 1100, "height": 800})
        page.screenshot(path=str(out / name))
        page.close()
