"""The HTML report of real runs, in Debian's Chromium driven by Playwright: matrix, filters, search,
cases with traces, baselines, and markup in driver messages staying text."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import gspc, records, summary
from html_drivers import PAYLOAD
from test_run import readme_driver

from conformance.report.html import embed, write_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
BROKEN = "broken_drivers:StatLosesSize"
MARKUP = "html_drivers:MarkupErrors"


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module; CI sets GSPC_BROWSER_TESTS=required so a missing browser fails."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("GSPC_BROWSER_TESTS") == "required":
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: memory passes, one broken driver fails, one driver's messages are markup."""
    work = tmp_path_factory.mktemp("html")
    done = gspc("run", "--target", "memory", "--driver", BROKEN, "--driver", MARKUP, "--out", "out", cwd=work)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    return work / "out"


class Page:
    """A report open in a fresh browser context, collecting console errors."""

    def __init__(self, browser, report: Path, bypass_csp: bool = False) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=bypass_csp)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(report.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready]", state="attached")

    def rows(self) -> list[dict[str, str]]:
        """The visible case rows as {column: text}."""
        heads = self.page.locator("table.cases thead th").all_inner_texts()
        return [dict(zip(heads, row.locator("td").all_inner_texts(), strict=False))
                for row in self.page.locator("table.cases tr.row").all()]  # fmt: skip

    def count(self) -> int:
        return int(self.page.inner_text("#count").split()[0].replace(",", ""))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_report(browser):
    pages: list[Page] = []

    def opener(report: Path, bypass_csp: bool = False) -> Page:
        pages.append(Page(browser, report, bypass_csp))
        return pages[-1]

    yield opener
    for page in pages:
        errors = page.errors
        page.close()
        assert not errors, f"console errors: {errors}"


def test_every_run_writes_a_self_contained_report(run: Path) -> None:
    html = (run / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), "the page loads nothing from a network"
    assert "<link " not in html.replace('<link rel="icon" href="data:,">', "")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert html.count("</script>") == html.count("<script")  # no data closes a script element early
    assert "<img" not in html and "<script>window.__pwned" not in html


def test_embed_keeps_script_text_inert() -> None:
    value = {"m": "</script><!-- <script> & \u2028\u2029 é"}
    text = embed(value)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == value


def test_matrix_failures_and_a_case_with_its_trace(run: Path, open_report) -> None:
    report = open_report(run / "index.html")
    page = report.page
    cell = page.locator(f'#matrix button[data-target="{BROKEN}"][data-spec="sse"]')
    assert "non-conformant" in cell.inner_text()
    assert "conformant" in page.locator('#matrix button[data-target="memory"][data-spec="delete"]').inner_text()
    cell.click()
    assert page.locator("[data-filter=target]").input_value() == str(summary(run)["targets"].index(BROKEN))
    failures = page.locator("#failures li")
    assert failures.count() and all(BROKEN in t for t in failures.all_inner_texts())
    failures.filter(has_text="sse.refused-when-undeclared").first.click()
    detail = page.locator(".detail")
    assert "Failure at step" in detail.locator(".failbox").inner_text()
    assert "expected: size 7" in detail.inner_text() and "got" in detail.inner_text()
    steps = detail.locator("table.steps tbody tr")
    assert steps.count() >= 3 and "stat" in detail.locator("table.steps tr.failing").inner_text()
    assert "An SSE pair an operation does not declare" in detail.inner_text()  # the clause text


def test_filters_narrow_cases_and_clauses(run: Path, open_report) -> None:
    report = open_report(run / "index.html")
    page, total = report.page, len(records(run))
    assert report.count() == total
    page.select_option("[data-filter=target]", label=BROKEN)
    page.select_option("[data-filter=spec]", label="GSP-44 append")
    page.select_option("[data-filter=level]", "SHOULD")
    page.select_option("[data-filter=outcome]", "failed")
    expected = [r for r in records(run) if r["target"] == BROKEN and r["spec"] == "append"
                and r["level"] == "SHOULD" and r["outcome"] == "failed"]  # fmt: skip
    assert report.count() == len(expected) > 0
    assert {row["case"].split("\n")[0] for row in report.rows()} == {r["case"] for r in expected}
    clauses = page.locator("table.clauses tbody tr[data-clause]").evaluate_all("rs => rs.map(r => r.dataset.clause)")
    assert set(clauses) == {r["clause"] for r in expected}
    page.click("text=reset")
    assert report.count() == total


def test_search_finds_messages_and_traces(run: Path, open_report) -> None:
    report = open_report(run / "index.html")
    page = report.page
    _search(page, "size None")  # in failure messages
    rows = report.rows()
    assert rows and all(row["outcome"] == "failed" and row["target"] == BROKEN for row in rows)
    said = [r for r in records(run) if r["failure"] and "size none" in json.dumps(r["failure"]).lower()]
    assert report.count() == len(said)
    _search(page, "unicode-路径")  # only in step arguments
    traced = [r for r in records(run) if "unicode-路径" in json.dumps(r["steps"], ensure_ascii=False)]
    assert report.count() == len(traced) > 0


def _search(page, text: str) -> None:
    """Type into the search box, then wait out its debounce and the redraw after it (counted from before
    the typing: a redraw that comes quickly must not be missed)."""
    before = page.evaluate("window.__gspcTiming.updates")
    page.fill("input[type=search]", text)
    for _ in range(200):
        page.wait_for_timeout(25)
        if page.evaluate("window.__gspcTiming.updates") > before:
            return
    raise AssertionError("the page did not redraw after the search")


def test_markup_in_driver_messages_stays_text(run: Path, open_report) -> None:
    # Without the page's CSP: the DOM code alone must keep the markup inert.
    report = open_report(run / "index.html", bypass_csp=True)
    page = report.page
    page.locator("#failures li").filter(has_text=MARKUP).first.click()
    detail = page.locator(".detail")
    assert PAYLOAD in detail.inner_text()  # shown literally, quotes and tags included
    _search(page, "<script>window.__pwned=2")
    assert report.count() > 0 and all(row["target"] == MARKUP for row in report.rows())
    page.wait_for_timeout(100)  # an injected <img onerror> would have fired by now
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.querySelectorAll('main img, main script').length") == 0


def test_baseline_marks_new_failures_and_fixes(run: Path, tmp_path: Path, open_report) -> None:
    current = records(run)
    failed = next(r for r in current if r["outcome"] == "failed" and r["target"] == BROKEN)
    passed = next(r for r in current if r["outcome"] == "passed" and r["target"] == "memory")
    # The baseline run: the failing case still passed then, and memory's passing case failed then.
    baseline = [_with(r, "passed") if r is failed else _with(r, "failed") if r is passed else r for r in current]
    out = tmp_path / "compared"
    shutil.copytree(run, out)
    write_html(out, current, summary(run), baseline)
    report = open_report(out / "index.html")
    page = report.page
    page.select_option("[data-filter=change]", label="new failure (1)")
    assert [row["change"] for row in report.rows()] == ["new failure (was passed)"]
    assert report.rows()[0]["case"].split("\n")[0] == failed["case"]
    page.select_option("[data-filter=change]", label="fixed (1)")
    assert [row["change"] for row in report.rows()] == ["fixed (was failed)"]
    cell = page.locator(f'#matrix button[data-target="memory"][data-spec="{passed["spec"]}"]')
    assert "was conformant-with-warnings" in cell.inner_text() or "was non-conformant" in cell.inner_text()


def _with(record: dict[str, Any], outcome: str) -> dict[str, Any]:
    failure = {"step": 1, "op": "x", "expected": "e", "actual": "a"} if outcome == "failed" else None
    return {**record, "outcome": outcome, "failure": failure}


def test_no_stray_null_under_the_failures(run: Path, open_report) -> None:
    page = open_report(run / "index.html").page
    texts = page.evaluate("[...document.querySelectorAll('main *, main')].flatMap(e => [...e.childNodes])"
                          ".filter(n => n.nodeType === 3).map(n => n.textContent.trim())")  # fmt: skip
    assert "null" not in texts and "undefined" not in texts


def test_a_jump_never_leaves_a_heading_or_case_under_the_filter_bar(run: Path, browser) -> None:
    # A narrow window wraps the filter bar onto several lines: the jumps must still clear it.
    context = browser.new_context(viewport={"width": 700, "height": 700})
    page = context.new_page()
    page.goto((run / "index.html").resolve().as_uri())
    page.wait_for_selector("body[data-ready]", state="attached")
    bar = lambda: page.evaluate("document.getElementById('filters').getBoundingClientRect().bottom")  # noqa: E731
    top = lambda sel: page.evaluate(f"document.querySelector('{sel}').getBoundingClientRect().top")  # noqa: E731
    assert page.evaluate("getComputedStyle(document.getElementById('filters')).backgroundColor") == "rgb(255, 255, 255)"
    for section in ("sec-failures", "sec-clauses", "sec-cases", "sec-behaviours", "sec-run"):
        page.click(f'nav.sections a[href="#{section}"]')
        page.wait_for_timeout(50)
        assert top(f"#{section} h2") >= bar() - 0.5, section
    page.locator("#failures li").first.click()
    page.wait_for_selector("tr.row.open")
    assert top("tr.row.open") >= bar() - 0.5
    context.close()


def test_an_outcome_the_spec_does_not_list_is_a_failure_not_a_behaviour(run: Path, open_report) -> None:
    page = open_report(run / "index.html").page
    assert "unlisted" not in page.locator("#sec-behaviours").inner_text()
    # the read past the end failed the rule its alternatives sit under (otherwise), listed as that clause's failure
    failures = page.locator("#failures li").filter(has_text="errors.range-honoured")
    assert failures.count() == 1 and MARKUP in failures.inner_text()
    failures.click()
    assert "read-beyond-end" in page.locator(".detail").inner_text()


def test_a_raw_exception_shows_where_the_driver_raised_it(run: Path, open_report) -> None:
    page = open_report(run / "index.html").page
    _search(page, "escaped the driver")
    page.locator("table.cases tr.row").filter(has_text=MARKUP).first.click()
    frames = page.locator(".detail [data-frames]").first.inner_text()
    assert frames.startswith("raised at") and "html_drivers.py:" in frames and " in read" in frames


@pytest.fixture(scope="module")
def warned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with a SHOULD failure, a waiver (reason and link) and a driver that implements no append or SSE."""
    work = tmp_path_factory.mktemp("warned")
    (work / "mystore.py").write_text(readme_driver(), encoding="utf-8")
    (work / "known.yaml").write_text(
        f"target: {BROKEN}\nwaivers:\n  - clause: append.complete\n    reason: sizes come later\n"
        "    link: https://tracker.example/42\n",
        encoding="utf-8",
    )
    done = gspc("run", "--driver", BROKEN, "--driver", "mystore:MyDriver", "--spec", "append", "--spec", "sse",
                "--known-issues", "known.yaml", "--out", "out", cwd=work)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    return work / "out"


def test_a_warn_cell_leads_to_its_failed_clauses_and_waivers(warned: Path, open_report) -> None:
    page = open_report(warned / "index.html").page
    cell = page.locator(f'#matrix button[data-target="{BROKEN}"][data-spec="append"]')
    assert "warn" in cell.inner_text()
    cell.click()
    cause = page.locator("#cause .cause")
    cause.wait_for()
    text = cause.inner_text()
    assert "SHOULD failed: " in text and "append.create-empty" in text
    assert "waived: append.complete — sizes come later" in text
    assert cause.locator("a").get_attribute("href") == "https://tracker.example/42"
    assert cause.bounding_box()["y"] >= page.evaluate("document.getElementById('filters').offsetHeight") - 0.5


def test_a_spec_only_refused_is_shown_as_not_implemented(warned: Path, open_report) -> None:
    page = open_report(warned / "index.html").page
    cell = page.locator('#matrix button[data-target="mystore:MyDriver"][data-spec="sse"]')
    assert "refuses · not implemented, refuses correctly" in cell.inner_text()
    assert "conformant" not in cell.inner_text()
