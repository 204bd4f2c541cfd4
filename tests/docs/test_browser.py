"""The built HTML docs render in a real browser: headless Chromium driven over WebDriver.

Run with ``make docs-browser`` (``pytest -m browser tests/docs``). The check installs the
Debian packages ``chromium`` and ``chromium-driver`` with apt-get when they are not on PATH,
builds ``docs/_build/html`` when it is absent, serves it on 127.0.0.1 and keeps screenshots of
the pages it checked in ``docs/_build/screenshots/``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
SCREENSHOTS = DOCS / "_build" / "screenshots"
APT_PACKAGES = ["chromium", "chromium-driver"]
CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # W3C WebDriver element reference
API_FUNCTION = "keras_cnnkit.models.conv_stack"


# --- Chromium and chromedriver ---------------------------------------------------------------


def _tail(text: str, n: int = 2000) -> str:
    return text[-n:].strip()


def _browser_binaries() -> tuple[str | None, str | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    return browser, shutil.which("chromedriver")


def _apt_install(packages: list[str]) -> None:
    """Installs Debian packages with apt-get, or skips the test saying why that failed."""
    if shutil.which("apt-get") is None:
        pytest.skip(f"{' and '.join(packages)} are not on PATH and apt-get is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    for cmd in (["apt-get", "update"], install):
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=1200, check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.skip(f"`{' '.join(cmd)}` timed out after {exc.timeout} s")
        if proc.returncode != 0:
            pytest.skip(
                f"`{' '.join(cmd)}` failed with exit status {proc.returncode}:\n"
                f"{_tail(proc.stdout + proc.stderr)}"
            )


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of the Chromium browser and chromedriver, installed with apt-get when absent."""
    browser, driver = _browser_binaries()
    if browser is None or driver is None:
        _apt_install(APT_PACKAGES)
        browser, driver = _browser_binaries()
    if browser is None or driver is None:
        pytest.skip(
            f"{' and '.join(APT_PACKAGES)} installed, but chromium/chromedriver not on PATH"
        )
    return browser, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebDriver:
    """A minimal W3C WebDriver client over HTTP (just what these checks use)."""

    def __init__(self, driver_url: str, capabilities: dict[str, Any]):
        self.base = driver_url
        self.session_id = None
        value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session_id = value["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        if self.session_id is not None:
            path = f"/session/{self.session_id}{path}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise AssertionError(f"WebDriver {method} {path} -> {exc.code}: {detail}") from None

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    @property
    def title(self) -> str:
        return self._call("GET", "/title")

    @property
    def current_url(self) -> str:
        return self._call("GET", "/url")

    def find_all(self, css: str) -> list[str]:
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [element[ELEMENT_KEY] for element in found]

    def find(self, css: str) -> str:
        found = self.find_all(css)
        assert found, f"nothing in {self.current_url} matches {css!r}"
        return found[0]

    def text(self, element: str) -> str:
        """The element's rendered text (empty when it is not displayed)."""
        return self._call("GET", f"/element/{element}/text")

    def attribute(self, element: str, name: str) -> str | None:
        return self._call("GET", f"/element/{element}/attribute/{name}")

    def css(self, element: str, prop: str) -> str:
        return self._call("GET", f"/element/{element}/css/{prop}")

    def displayed(self, element: str) -> bool:
        return self._call("GET", f"/element/{element}/displayed")

    def rect(self, element: str) -> dict[str, float]:
        """The element's x, y, width and height in CSS pixels, relative to the document."""
        return self._call("GET", f"/element/{element}/rect")

    def execute(self, script: str, *elements: str) -> Any:
        args = [{ELEMENT_KEY: element} for element in elements]
        return self._call("POST", "/execute/sync", {"script": script, "args": args})

    def click(self, element: str) -> None:
        self._call("POST", f"/element/{element}/click", {})

    def screenshot(self, path: pathlib.Path) -> pathlib.Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path

    def quit(self) -> None:
        if self.session_id is not None:
            with contextlib.suppress(Exception):
                self._call("DELETE", "")
            self.session_id = None


@pytest.fixture(scope="session")
def browser(chromium) -> Iterator[WebDriver]:
    """A headless Chromium session driven by a chromedriver on a free 127.0.0.1 port."""
    binary, driver = chromium
    port = _free_port()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log_path = SCREENSHOTS / "chromedriver.log"
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [driver, f"--port={port}", "--allowed-ips=127.0.0.1"], stdout=log, stderr=log
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/status", timeout=5) as response:
                    if json.loads(response.read())["value"].get("ready"):
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                msg = log_path.read_text()
                pytest.fail(f"chromedriver did not start on port {port}:\n{_tail(msg)}")
            time.sleep(0.2)
        session = WebDriver(
            url,
            {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": binary, "args": CHROME_ARGS},
            },
        )
        try:
            yield session
        finally:
            session.quit()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- the built docs, served on 127.0.0.1 -----------------------------------------------------


@pytest.fixture(scope="session")
def built_html() -> pathlib.Path:
    """``docs/_build/html``, built with sphinx-build (as ``make docs`` does) when absent."""
    if not (HTML / "index.html").is_file():
        pytest.importorskip(
            "sphinx", reason="docs/_build/html is absent and sphinx is not installed"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        proc = subprocess.run(
            [*cmd, str(DOCS), str(HTML)], capture_output=True, text=True, env=env, timeout=900
        )
        assert proc.returncode == 0, f"sphinx-build failed:\n{_tail(proc.stderr, 6000)}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return HTML


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.requests.append((self.path, int(code)))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def docs_server(built_html) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """The docs' base URL on 127.0.0.1 and the list of (path, status) it has served."""
    served: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"requests": served})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(built_html))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- what the docs sources say should render -------------------------------------------------


def _toctree_pages() -> list[str]:
    """Docnames listed in the toctrees of docs/index.rst, in order."""
    pages, in_toctree = [], False
    for line in (DOCS / "index.rst").read_text().splitlines():
        if line.startswith(".. toctree::"):
            in_toctree = True
        elif in_toctree and line.strip() and not line.startswith(" "):
            in_toctree = False
        elif in_toctree and line.strip() and not line.strip().startswith(":"):
            pages.append(line.strip())
    return pages


def _page_title(docname: str) -> str:
    """The first section title of ``docs/<docname>.rst`` as it renders (inline markup dropped)."""
    lines = (DOCS / f"{docname}.rst").read_text().splitlines()
    for title, underline in zip(lines, lines[1:]):
        if title.strip() and re.fullmatch(r"([=\-~^\"'*#+])\1{2,}", underline.strip()):
            return re.sub(r"``(.*?)``", r"\1", title.strip())
    raise AssertionError(f"no title in docs/{docname}.rst")


def _normalize(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip("\n").splitlines())


def _code_blocks(docname: str) -> list[str]:
    """The bodies of the ``.. code-block::`` directives of ``docs/<docname>.rst``."""
    blocks, body = [], None
    for line in (DOCS / f"{docname}.rst").read_text().splitlines() + ["END"]:
        if body is not None and (not line.strip() or line.startswith(" ")):
            body.append(line)
            continue
        if body is not None:
            text = textwrap.dedent("\n".join(body)).strip("\n")
            # drop the directive's options (``:caption:``, ``:linenos:``...) before the code
            while re.match(r":[\w-]+:", text):
                text = text.split("\n", 1)[1].lstrip("\n") if "\n" in text else ""
            blocks.append(_normalize(text))
            body = None
        if line.startswith(".. code-block::"):
            body = []
    return blocks


def _png_size(path: pathlib.Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _check_screenshot(path: pathlib.Path) -> None:
    width, height = _png_size(path)
    assert width >= 1000 and height >= 600, f"{path} is only {width}x{height}"
    # a blank 1280x900 page compresses to a few kB; rendered docs are much larger
    assert path.stat().st_size > 20_000, f"{path} is only {path.stat().st_size} bytes"
    print(f"screenshot: {path}")


def _no_missing_files(served: list[tuple[str, int]]) -> None:
    missing = [(p, c) for p, c in served if c >= 400 and not p.startswith("/favicon.ico")]
    assert not missing, f"the pages requested files the build lacks: {missing}"


# --- the checks ------------------------------------------------------------------------------


def test_index_renders_title_and_navigation(browser, docs_server):
    base, served = docs_server
    browser.get(f"{base}/index.html")
    assert "keras-cnnkit" in browser.title
    assert browser.text(browser.find("article h1")).strip() == "keras-cnnkit"

    links = {}
    rendered = {}
    for link in browser.find_all(".sidebar-tree a.reference.internal"):
        page = (browser.attribute(link, "href") or "").rsplit("/", 1)[-1]
        links[page], rendered[page] = link, browser.text(link).strip()
    expected = {f"{page}.html": _page_title(page) for page in _toctree_pages()}
    assert "getting-started.html" in expected and "api.html" in expected
    assert rendered == expected, "the sidebar does not show the toctree of docs/index.rst"
    # visible text: furo shows the sidebar at this window width, so the links have text
    assert all(rendered.values())

    # furo's stylesheet applied: the sidebar sits left of the article, not above it
    sidebar, article = (
        browser.rect(browser.find(".sidebar-tree")),
        browser.rect(browser.find("article")),
    )
    assert sidebar["x"] + sidebar["width"] <= article["x"], (sidebar, article)
    assert sidebar["y"] < article["y"] + article["height"], (sidebar, article)
    shot = browser.screenshot(SCREENSHOTS / "index.png")
    _check_screenshot(shot)

    # the navigation works: clicking "Getting started" opens that page, code included
    browser.click(links["getting-started.html"])
    deadline = time.monotonic() + 30
    while not browser.current_url.endswith("/getting-started.html"):
        assert time.monotonic() < deadline, f"the click led to {browser.current_url}"
        time.sleep(0.1)
    assert browser.title.startswith(_page_title("getting-started"))
    rendered_code = [_normalize(browser.text(pre)) for pre in browser.find_all("div.highlight pre")]
    expected_code = _code_blocks("getting-started")
    assert expected_code, "docs/getting-started.rst has no code-block"
    assert rendered_code == expected_code
    _no_missing_files(served)


def test_api_page_renders_a_documented_function(browser, docs_server):
    base, served = docs_server
    browser.get(f"{base}/api.html#{API_FUNCTION}")
    assert browser.title.startswith("API reference")
    assert "keras-cnnkit" in browser.title

    signature = browser.find(f'dt[id="{API_FUNCTION}"]')
    assert browser.displayed(signature)
    text = " ".join(browser.text(signature).split())
    assert text.startswith("keras_cnnkit.models.conv_stack(spec, *, input_shape=(32, 32, 3)"), text
    assert "num_classes=10" in text

    # the Example of its docstring renders as a highlighted code block
    example = browser.find(f'dl:has(> dt[id="{API_FUNCTION}"]) > dd div.highlight pre')
    code = browser.text(example)
    assert code.startswith(">>> model = conv_stack("), code
    # Pygments' stylesheet applied: strings are coloured differently from names
    string = browser.find(f'dl:has(> dt[id="{API_FUNCTION}"]) > dd div.highlight pre .s2')
    name = browser.find(f'dl:has(> dt[id="{API_FUNCTION}"]) > dd div.highlight pre .n')
    assert browser.css(string, "color") != browser.css(name, "color")

    # the browser follows the #anchor (furo scrolls smoothly): the signature ends up at the
    # top of the viewport, where the screenshot shows it
    deadline, tops = time.monotonic() + 20, [-1.0]
    while True:
        time.sleep(0.25)
        tops.append(browser.execute("return arguments[0].getBoundingClientRect().top", signature))
        if 0 <= tops[-1] < 300 and tops[-1] == tops[-2]:
            break
        assert time.monotonic() < deadline, f"conv_stack's signature stayed at {tops[-5:]}px"
    shot = browser.screenshot(SCREENSHOTS / "api-conv_stack.png")
    _check_screenshot(shot)
    _no_missing_files(served)


def _pictures(docname: str) -> list[str]:
    """File names of the ``.. figure::`` and ``.. image::`` directives of a page, in order."""
    text = (DOCS / f"{docname}.rst").read_text()
    return [
        pathlib.PurePosixPath(path).name
        for path in re.findall(r"^\.\. (?:figure|image):: (\S+)", text, re.M)
    ]


PICTURE_PAGES = [page for page in _toctree_pages() if _pictures(page)]


def test_the_pages_with_pictures_are_known():
    # the pictures this check must see load; a page losing its pictures fails here
    assert {"getting-started", "translation-invariance", "examples"} <= set(PICTURE_PAGES)
    assert len(_pictures("getting-started")) >= 3
    assert len(_pictures("translation-invariance")) >= 2


@pytest.mark.parametrize("page", PICTURE_PAGES)
def test_pictures_load(browser, docs_server, page):
    base, served = docs_server
    browser.get(f"{base}/{page}.html")
    expected = _pictures(page)
    images = browser.find_all("article img")
    sources = [browser.attribute(img, "src") or "" for img in images]
    assert [s.rsplit("/", 1)[-1] for s in sources] == expected, sources
    for img, src in zip(images, sources):
        # wait for the download and decoding, then check the picture has pixels
        deadline = time.monotonic() + 20
        while not browser.execute("return arguments[0].complete", img):
            assert time.monotonic() < deadline, f"{src} did not finish loading"
            time.sleep(0.1)
        natural = browser.execute("return arguments[0].naturalWidth", img)
        assert natural > 0, f"{src} did not load (naturalWidth 0)"
        assert browser.displayed(img), f"{src} is not displayed"
        assert browser.rect(img)["width"] >= 200, (src, browser.rect(img))
        browser.execute("arguments[0].scrollIntoView({block: 'start'})", img)
        time.sleep(0.3)
        name = pathlib.PurePosixPath(src).stem
        _check_screenshot(browser.screenshot(SCREENSHOTS / f"{page}-{name}.png"))
    _no_missing_files(served)
