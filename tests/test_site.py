"""The rendered book: built at the smallest profile, checked as files, then opened in Chromium.

The build executes every chapter notebook (a cell that raises fails it), so this module is also the
test that every chapter runs end to end at the `smoke` profile.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from bs4 import BeautifulSoup

pytestmark = pytest.mark.slow  # the whole book is built once for the module (minutes)

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "_build" / "test-smoke"
HTML = OUT / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"
BOOK_TITLE = "Textbooks Are All You Need, reproduced"


def _toc_files() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


@pytest.fixture(scope="module")
def site() -> Path:
    """Build the book at `smoke` with warnings as errors (stale doctrees removed, as CI would)."""
    shutil.rmtree(OUT / "_build" / ".doctrees", ignore_errors=True)
    env = {**os.environ, "PHI1_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [
        str(jupyter_book),
        "build",
        str(REPO),
        "--path-output",
        str(OUT),
        "-W",
        "-n",
        "--keep-going",
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        reports = sorted((HTML / "reports").glob("**/*.log")) if (HTML / "reports").exists() else []
        details = "\n".join(path.read_text()[-3000:] for path in reports)
        pytest.fail(
            f"book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}\n{details}"
        )
    return HTML


def _pages(site: Path) -> list[Path]:
    return [site / f"{name}.html" for name in _toc_files()]


def test_every_toc_entry_produced_a_page(site):
    missing = [str(p.relative_to(site)) for p in _pages(site) if not p.is_file()]
    assert not missing, f"pages missing from the build: {missing}"


def test_no_page_carries_an_error(site):
    for page in _pages(site):
        html = page.read_text()
        soup = BeautifulSoup(html, "html.parser")
        errors = soup.select(".output.error, .output.traceback, .output.stderr")
        assert not errors, f"{page.name}: error output {errors[0].get_text()[:300]!r}"
        assert "Traceback (most recent call last)" not in html, f"{page.name} shows a traceback"


def test_every_referenced_image_exists(site):
    checked = 0
    for page in _pages(site):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for image in soup.find_all("img"):
            source = image.get("src", "")
            if source.startswith(("data:", "http://", "https://")):
                continue
            target = (page.parent / unquote(urlparse(source).path)).resolve()
            assert target.is_file(), f"{page.name} references missing image {source}"
            checked += 1
    assert checked > 0, "no images found at all: the figures did not render"


def _cited_keys() -> set[str]:
    keys: set[str] = set()
    pattern = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
    sources = list((REPO / "book").glob("*.md")) + list((REPO / "notebooks").glob("*.ipynb"))
    for path in sources:
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        for group in pattern.findall(text):
            keys.update(key.strip() for key in group.split(","))
    return keys


def test_every_citation_resolves(site):
    bib = (REPO / "book" / "references.bib").read_text()
    known = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = _cited_keys()
    assert "gunasekar2023textbooks" in cited
    assert not cited - known, f"cited but not in references.bib: {sorted(cited - known)}"
    bibliography = BeautifulSoup((site / "book" / "bibliography.html").read_text(), "html.parser")
    anchors = {tag["id"] for tag in bibliography.find_all(id=True)}
    assert "Textbooks are all you need" in bibliography.get_text()
    links = 0
    for page in _pages(site):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for link in soup.select('a[href*="bibliography.html#"]'):
            anchor = link["href"].split("#", 1)[1]
            assert anchor in anchors, f"{page.name}: citation {link.get_text()!r} points nowhere"
            links += 1
    assert links > 0, "no rendered citations link to the bibliography"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are needed (`make test` installs Debian's packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _images_loaded(driver) -> list[dict]:
    """Scroll through the page (lazy images) and report every image's natural width."""
    driver.execute_script(
        "for (const img of document.images) { img.loading = 'eager'; img.scrollIntoView(); }"
    )
    driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const pending = Array.from(document.images).filter(img => !img.complete);
        if (!pending.length) { done(); return; }
        let left = pending.length;
        for (const img of pending) { img.onload = img.onerror = () => { if (--left === 0) done(); }; }
        setTimeout(done, 15000);
        """
    )
    return driver.execute_script(
        "return Array.from(document.images).map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth}));"
    )


def _ink_fraction(png: Path) -> float:
    """The share of a screenshot's pixels that differ from its commonest colour (the page's)."""
    from PIL import Image

    with Image.open(png) as image:
        pixels = image.convert("RGB")
        counts = pixels.getcolors(maxcolors=pixels.width * pixels.height)
    background = max(count for count, _ in counts)
    return 1 - background / (pixels.width * pixels.height)


def test_home_page_and_first_chapter_in_chromium(served, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{served}/index.html")
    # index.html redirects to the preface: wait until that page, not the redirect, has loaded.
    WebDriverWait(browser, 60).until(
        lambda driver: (
            driver.current_url.endswith("/book/intro.html")
            and driver.execute_script("return document.readyState") == "complete"
        )
    )
    assert BOOK_TITLE in browser.title
    home_images = _images_loaded(browser)
    browser.execute_script("window.scrollTo(0, 0);")
    browser.save_screenshot(str(SCREENSHOTS / "home.png"))
    assert any("pipeline" in image["src"] for image in home_images), (
        "the pipeline figure is missing"
    )
    assert all(image["width"] > 0 for image in home_images), f"broken images: {home_images}"

    chapter = _toc_files()[1]
    browser.get(f"{served}/{chapter}.html")
    assert "The paper at a glance" in browser.title
    images = _images_loaded(browser)
    assert images, "the first chapter shows no figures"
    broken = [image for image in images if image["width"] == 0]
    assert not broken, f"figures that did not load: {broken}"
    browser.save_screenshot(str(SCREENSHOTS / "chapter-00.png"))
    for shot in ("home.png", "chapter-00.png"):
        assert _ink_fraction(SCREENSHOTS / shot) > 0.01, f"{shot} is blank: the page did not render"
