"""The web UI in a real headless browser: Debian's chromium driven by Playwright.

The server runs in this process (uvicorn in a thread, a free loopback port),
over its own projection of a catalog built with the SDK. The browser is the
system's ``/usr/bin/chromium`` (``make test`` installs it when it can); no
browser is ever downloaded. Without it these tests skip, saying why.

Set ``CATALOG_SCREENSHOTS=docs/img`` to (re)write the README's screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_web import Demo, build_demo, uid_of

from catalog.config import Config
from catalog.server import Server

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CATALOG_CHROMIUM", "/usr/bin/chromium"))
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


def _missing() -> str | None:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return f"no chromium at {CHROMIUM} (apt-get install chromium; `make test` does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


if _missing():  # pragma: no cover - the environment decides
    pytest.skip(str(_missing()), allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("browser")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CATALOG_HOME", str(root / "home"))
        mp.setenv("XDG_CONFIG_HOME", str(root / "config"))
        built = build_demo(root)
        yield built
        built.writer.close()


@pytest.fixture(scope="module")
def server(demo: Demo) -> Iterator[Server]:
    config = Config.load(log=demo.log, db=str(demo.root / "ui.duckdb"), project="demo", actor="web")
    with Server(config, advertise=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    context.close()
    assert not errors, f"the page logged errors: {errors}"  # CSP violations included


def keys(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("table.artifacts a.key").all_inner_texts()]


def _shoot(page: Page, path: Path, height: int | None = None) -> None:
    if height is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": height})


def test_screenshots(page: Page, server: Server, demo: Demo, tmp_path: Path) -> None:
    """Screenshots of the main pages (to docs/img when CATALOG_SCREENSHOTS says so)."""
    out = Path(os.environ.get("CATALOG_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shots: list[tuple[str, str, dict[str, Any]]] = [
        ("ui-projects.png", "/", {"height": 520}),
        ("ui-artifacts.png", "/projects/demo/artifacts?tab=all", {"height": 720}),
        (
            "ui-dataset.png",
            f"/projects/demo/artifacts/sales?uid={uid_of(demo.uris['sales-v1'])}",
            {},
        ),
        ("ui-run.png", f"/projects/demo/runs/{demo.runs['train']}", {}),
    ]
    for name, url, options in shots:
        page.goto(server.url + url)
        expect(page.locator("main")).to_be_visible()
        _shoot(page, out / name, options.get("height"))
        assert (out / name).stat().st_size > 10_000


def test_search_by_label_and_time_range(page: Page, server: Server, demo: Demo) -> None:
    page.goto(f"{server.url}/projects/demo/artifacts?tab=all")
    expect(page.locator("#result-summary")).to_contain_text("of 8")
    page.fill("input[name=labels]", "team=ml")
    page.click("form.search button[type=submit]")
    expect(page.locator("#result-summary")).to_contain_text("of 3")
    assert sorted(keys(page)) == ["churn-model", "notes", "sales"]
    page.click(".quick a:has-text('hour')")  # a quick pick keeps the label filter
    expect(page).to_have_url(re.compile(r"since=1h"))
    assert "labels=team%3Dml" in page.url
    assert sorted(keys(page)) == ["churn-model", "notes", "sales"]
    assert demo.between is not None
    page.fill("input[name=labels]", "team")
    page.fill("input[name=since]", "")
    page.fill("input[name=until]", demo.between.isoformat())
    page.click("form.search button[type=submit]")
    expect(page.locator("#result-summary")).to_contain_text("of 1")
    assert keys(page) == ["old-report"]


def test_dataset_preview_and_stats(page: Page, server: Server, demo: Demo) -> None:
    page.goto(f"{server.url}/projects/demo/artifacts?tab=datasets")
    page.click("table.artifacts a.key:has-text('sales')")
    expect(page.locator("h1")).to_contain_text("sales")
    page.click(f"#versions tr[data-uid='{uid_of(demo.uris['sales-v1'])}'] a")
    expect(page.locator("#preview")).to_be_visible()
    assert page.locator("#preview tbody tr").count() == 20
    expect(page.locator("#preview thead")).to_contain_text("segment")
    expect(page.locator("#stats")).to_contain_text("spend")
    assert page.locator("#stats svg.hist rect").count() >= 3 * 20  # three numeric columns
    expect(page.locator("#schema")).to_contain_text("customer_id")
    expect(page.locator("#lineage svg.lineage")).to_be_visible()


def test_producer_run_lists_the_dataset(page: Page, server: Server, demo: Demo) -> None:
    page.goto(f"{server.url}/projects/demo/artifacts/sales?uid={uid_of(demo.uris['sales-v1'])}")
    page.click("#producer a")
    expect(page.locator("h1")).to_contain_text("ingest")
    expect(page.locator("#params")).to_contain_text("rows")
    page.click("#artifacts-tab")
    expect(page.locator("#run-artifacts")).to_contain_text("sales")
    assert keys(page) == ["sales"]


def test_move_a_tag(page: Page, server: Server, demo: Demo) -> None:
    v1, v2 = uid_of(demo.uris["sales-v1"]), uid_of(demo.uris["sales-v2"])
    page.goto(f"{server.url}/projects/demo/artifacts/sales?uid={v2}")
    expect(page.locator(f"#versions tr[data-uid='{v1}']")).to_contain_text("train")
    page.fill("#tag-form input[name=tag]", "train")
    page.click("#tag-form button[type=submit]")
    expect(page.locator(".flash.ok")).to_contain_text("Tag train now names this version")
    expect(page.locator(f"#versions tr[data-uid='{v2}']")).to_contain_text("train")
    expect(page.locator(f"#versions tr[data-uid='{v1}']")).not_to_contain_text("train")
    assert demo.writer.get_artifact("store://datasets/demo/sales:train").uid == v2


def test_download_the_payload(page: Page, server: Server, demo: Demo, tmp_path: Path) -> None:
    uid = uid_of(demo.uris["notes"])
    page.goto(f"{server.url}/projects/demo/artifacts/notes?uid={uid}")
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "notes.txt"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "notes.txt"
    assert saved.read_bytes() == demo.bodies["notes"]
    # the label full of HTML is shown as text, never run
    expect(page.locator("#labels")).to_contain_text('<script>alert("x")</script>')


def test_copy_button_and_plot(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/projects/demo/artifacts/confusion")
    button = page.locator("button.copy")
    button.click()
    expect(button).to_have_text(re.compile("Copied|Copy"))
    image = page.locator("img.plot")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 8
