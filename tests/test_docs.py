"""The documentation site as a person sees it.

The site is built (``make docs``, or the folder named by ``SIMPERT_DOCS_HTML``), then:

- every internal link of every page resolves (the file exists, and so does the anchor), and
  every image a page references exists and is a readable image;
- headless Chromium (Debian's ``chromium``, driven over the DevTools protocol on a pipe)
  opens the index, the gallery, the verdicts, the vignettes, the API and R indexes and every
  metric page, takes a screenshot of
  each (``docs/_build/screenshots/``), and checks in the rendered page that every image has
  loaded and every link the browser sees points to an existing page and anchor.

Skipped when no Chromium is installed, unless ``SIMPERT_REQUIRE_BROWSER=1`` (CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "_build" / "screenshots"
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
REQUIRE = os.environ.get("SIMPERT_REQUIRE_BROWSER") == "1"

if BROWSER is None:
    if REQUIRE:
        raise RuntimeError("SIMPERT_REQUIRE_BROWSER=1 but no Chromium is installed (tools/install_browser.sh)")
    pytest.skip("no Chromium installed (tools/install_browser.sh installs Debian's chromium)", allow_module_level=True)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars"]


# ---------------------------------------------------------------------------------------
# The site


@pytest.fixture(scope="module")
def site() -> Path:
    given = os.environ.get("SIMPERT_DOCS_HTML")
    if given:
        html = Path(given).resolve()
    else:
        res = subprocess.run(["make", "--no-print-directory", "docs"], cwd=ROOT, capture_output=True, text=True,
                             timeout=3600)
        assert res.returncode == 0, f"make docs failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
        html = ROOT / "docs" / "_build" / "html"
    assert (html / "index.html").is_file(), html
    return html


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links, self.images, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href") is not None:
            self.links.append(a["href"])
        elif tag == "link" and a.get("href") and a.get("rel") in ("stylesheet", "icon", "next", "prev", "index", "search"):
            self.links.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.links.append(a["src"])
        elif tag == "img" and a.get("src") is not None:
            self.images.append(a["src"])


def _parse(path: Path) -> _Refs:
    p = _Refs()
    p.feed(path.read_text(errors="replace"))
    return p


_IDS: dict[Path, set] = {}


def _ids(path: Path) -> set:
    if path not in _IDS:
        _IDS[path] = _parse(path).ids
    return _IDS[path]


def _internal(url: str) -> bool:
    u = urlparse(url)
    return u.scheme in ("", "file") and not url.startswith(("mailto:", "javascript:", "data:"))


def _resolve(page: Path, url: str) -> tuple[Path, str]:
    base, frag = urldefrag(url)
    u = urlparse(base)
    if u.scheme == "file":
        target = Path(unquote(u.path))
    elif base == "":
        target = page
    else:
        target = (page.parent / unquote(u.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(frag)


def _check_link(page: Path, url: str) -> str | None:
    target, frag = _resolve(page, url)
    if not target.exists():
        return f"{url}: no file {target}"
    if frag and target.suffix == ".html" and frag not in _ids(target):
        return f"{url}: no anchor #{frag} in {target.name}"
    return None


def _image_ok(path: Path) -> bool:
    if not path.is_file():
        return False
    head = path.read_bytes()[:512]
    return head.startswith((b"\x89PNG", b"\xff\xd8", b"GIF8")) or b"<svg" in head


def test_every_internal_link_and_image_resolves(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 100, f"only {len(pages)} pages"
    bad, n_links, n_images = [], 0, 0
    for page in pages:
        refs = _parse(page)
        for url in refs.links:
            if not _internal(url) or url == "#":
                continue
            n_links += 1
            err = _check_link(page, url)
            if err:
                bad.append(f"{page.relative_to(site)}: {err}")
        for src in refs.images:
            if not _internal(src):
                continue
            n_images += 1
            target, _ = _resolve(page, src)
            if not _image_ok(target):
                bad.append(f"{page.relative_to(site)}: image {src} missing or unreadable")
    print(f"measured: {len(pages)} pages, {n_links} internal links, {n_images} images, {len(bad)} broken")
    assert not bad, "\n".join(bad[:50])


# ---------------------------------------------------------------------------------------
# Chromium over the DevTools protocol (--remote-debugging-pipe: fd 3 in, fd 4 out)


class Chromium:
    def __init__(self, exe: str, *, width: int = 1280, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="simpert-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def wire():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._id = 0
        self._replies: dict[int, dict] = {}
        self._events: queue.Queue = queue.Queue()
        self._cv = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=True)

    def _reader(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cv:
                    self._replies[-1] = {"error": {"message": "browser closed the pipe"}}
                    self._cv.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cv:
                        self._replies[msg["id"]] = msg
                        self._cv.notify_all()
                else:
                    self._events.put(msg)

    def call(self, method, params=None, *, session=False, timeout=60):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._id not in self._replies:
                if -1 in self._replies:
                    raise RuntimeError(self._replies[-1]["error"]["message"])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method}: no reply in {timeout} s")
                self._cv.wait(left)
            reply = self._replies.pop(self._id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, url: str, *, timeout=60):
        while not self._events.empty():
            self._events.get_nowait()
        self.call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + timeout
        while True:
            ev = self._events.get(timeout=max(0.1, deadline - time.monotonic()))
            if ev.get("method") == "Page.loadEventFired" and ev.get("sessionId") == self.session:
                return

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=True)
        if "exceptionDetails" in res:
            raise RuntimeError(res["exceptionDetails"])
        return res["result"].get("value")

    def screenshot(self, path: Path, *, max_height: int = 8000):
        """The whole page (up to ``max_height`` CSS pixels), as a person scrolling it sees it."""
        size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True},
                         session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


PAGE_STATE = """
(async () => {
  for (const img of document.images) { img.loading = "eager"; }
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(ok => { img.onload = img.onerror = ok; setTimeout(ok, 10000); })));
  return {
    title: document.title,
    h1: (document.querySelector("h1") || {}).textContent || "",
    text: document.body.innerText.length,
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0,
                                             w: i.naturalWidth})),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
  };
})()
"""


def _visit_pages(site: Path) -> list[Path]:
    metric = sorted((site / "metric").glob("*.html"))
    first = [site / "index.html", site / "which_metric.html", site / "gallery" / "index.html",
             site / "api" / "index.html", site / "r" / "index.html", site / "r" / "simulate_screen.html",
             *sorted((site / "vignettes").glob("*.html")), site / "metric" / "index.html"]
    return first + [p for p in metric if p not in first]


def test_pages_render_in_chromium(site):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    pages = _visit_pages(site)
    assert len(pages) > 40, pages
    bad, n_img, n_links = [], 0, 0
    browser = Chromium(BROWSER)
    try:
        version = browser.call("Browser.getVersion")["product"]
        for page in pages:
            browser.open(page.as_uri())
            state = browser.evaluate(PAGE_STATE)
            rel = page.relative_to(site)
            if not state["h1"].strip() or state["text"] < 200:
                bad.append(f"{rel}: the page renders empty (h1 {state['h1']!r}, {state['text']} characters)")
            source = ROOT / "vignettes" / (page.stem + ".py")
            if rel.parts[0] == "vignettes" and source.is_file() and "plt." in source.read_text():
                if not state["images"]:
                    bad.append(f"{rel}: the vignette draws figures but the page shows none")
            for img in state["images"]:
                n_img += 1
                if not img["ok"]:
                    bad.append(f"{rel}: image does not load: {img['src']}")
            for url in state["links"]:
                if urlparse(url).scheme != "file":
                    continue
                n_links += 1
                err = _check_link(page, url)
                if err:
                    bad.append(f"{rel}: {err}")
            shot = SHOTS / (str(rel.with_suffix("")).replace("/", "__") + ".png")
            browser.screenshot(shot)
            assert shot.stat().st_size > 5000, f"{shot}: blank screenshot?"
    finally:
        browser.close()
    print(f"measured: {version}: {len(pages)} pages opened, {n_img} images loaded, {n_links} links followed, "
          f"{len(bad)} problems; screenshots in {SHOTS}")
    assert not bad, "\n".join(bad[:50])


def test_metric_pages_have_their_sections(site):
    import simpert as sp

    names = list(sp.metrics.list_metrics().index)
    missing = []
    for name in names:
        page = site / "metric" / f"{name}.html"
        if not page.is_file():
            missing.append(f"{name}: no page")
            continue
        ids = _ids(page)
        for sec in ("definition", "source-and-version", "options", "measured-parity", "calibration-card"):
            if sec not in ids:
                missing.append(f"{name}: no section {sec}")
    assert not missing, "\n".join(missing)
