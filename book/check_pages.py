"""Open every page of the built book in headless Chromium, as a reader sees it, and check it.

A page fails when
  * an image did not load (``<img>`` with no pixels);
  * a figure has no image at all (a glued matplotlib figure stored only as its text form);
  * a formula is left as TeX: a MathJax error, a ``math`` element MathJax did not typeset, or
    ``$...$``, ``\\(...\\)``, ``\\[...\\]``, ``\\begin{...}`` in the page's text; or a MyST
    role is left unparsed in the text (``{glue:text}`x`` with a typo), or a Markdown table is
    left as text (``| a | b | |---|---|``: a cell's Markdown output that was not parsed as MyST);
  * a widget output has no static fallback: the reader without a kernel (or without the widget
    JavaScript) sees nothing there, so the figure it redraws must be shown above it, in the same
    section of the chapter;
  * a line of code (a code cell, a code block, or a cell's text output) or a display formula is
    wider than the content column, so that the reader has to scroll sideways to see its end
    (measured at ``--width``, 1280 CSS pixels by default: a laptop screen).

It writes a full-page screenshot of every page (``--out``) for a human to look at.

Nothing leaves the machine. The pages are served from a local HTTP server; the browser's
requests for MathJax, which Sphinx loads from the jsDelivr CDN (``mathjax_path``'s default), are
answered from a local copy of the same major version of the npm package ``mathjax`` (installed
with npm into ``.cache/page-check`` on first use), and every other request outside the local
server is refused. So the published pages stay exactly as Sphinx writes them, while the check
typesets every formula with the MathJax that readers get. The widget JavaScript (require.js and
``@jupyter-widgets/html-manager``, also from CDNs) is refused on purpose: the page must make sense
without it, which is the widget check above.

Chromium is Debian's ``chromium`` package, driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``), so no browser download and no Python package beyond the standard
library is needed.

Usage (from the repository root, after ``jupyter-book build .``)::

    python book/check_pages.py                       # _build/html, screenshots in _build/page-check
    python book/check_pages.py --pages book/02_coding_rate.html book/07_attention.html

Exit status 0 when every page passes, 1 when some page has a problem (each is printed), 2 when
the check cannot run (no built book, no Chromium, no npm).
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import http.server
import json
import mimetypes
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-pipe")
MATHJAX_CDN = re.compile(r"https://cdn\.jsdelivr\.net/npm/mathjax@([0-9][^/]*)/(.*)")


class CheckError(RuntimeError):
    """The check cannot run (as opposed to a page that fails it)."""


# ------------------------------------------------------------------------------------------
# The browser: Chromium's DevTools protocol over a pipe (JSON messages separated by NUL bytes,
# commands on the child's fd 3, replies and events on its fd 4).

class Browser:
    """A headless Chromium with one tab, driven through the DevTools protocol."""

    def __init__(self, executable: str, width: int, height: int, on_request) -> None:
        self._profile = tempfile.mkdtemp(prefix="check-pages-profile-")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        # Move the child's ends above 3 and 4 first, so that dup2 into 3 and 4 cannot clobber them.
        child_in = fcntl.fcntl(to_child, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_child, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child)
        os.close(from_child)

        def _wire_pipes() -> None:  # runs in the child, before exec and before fds are closed
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=_wire_pipes)
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        self._on_request = on_request
        self.width, self.height = width, height
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self.call("Page.enable", session=self.session)
            self._window(width, height)
            self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session=self.session)
        except CheckError:
            self.proc.kill()
            self.close()
            raise

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        for fd in (self._read, self._write):
            os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._write, data):]
        return self._next_id

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        """Send a command and wait for its reply (events that arrive meanwhile are kept)."""
        wanted = self.send(method, params, session)
        reply = self._receive(lambda m: m.get("id") == wanted, timeout, f"the reply to {method}")
        if "error" in reply:
            raise CheckError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float) -> dict:
        for i, event in enumerate(self._events):
            if event["method"] == method:
                return self._events.pop(i)
        return self._receive(lambda m: m.get("method") == method, timeout, method)

    def clear_events(self) -> None:
        self._events.clear()

    def _receive(self, wanted, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if message.get("method") == "Fetch.requestPaused":
                    self._on_request(self, message["params"])
                elif wanted(message):
                    return message
                elif "method" in message:
                    self._events.append(message)
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise CheckError(f"Chromium: no {what} within {timeout:.0f} s"
                                 + ("" if self.proc.poll() is None else " (the browser exited)"))
            if select.select([self._read], [], [], left)[0]:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise CheckError("Chromium closed the DevTools pipe")
                self._buffer += chunk

    def evaluate(self, expression: str, timeout: float = 60.0):
        """The value of an (async) JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=self.session,
                           timeout=timeout)
        if "exceptionDetails" in result:
            raise CheckError(f"page script failed: {result['exceptionDetails'].get('text')} "
                             f"{result['exceptionDetails'].get('exception', {}).get('description', '')}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page at the window's width (1 CSS pixel = 1 image pixel).

        The window is made as tall as the page for the capture, then restored: Chromium's
        ``captureBeyondViewport`` lays some pages out anew at another width."""
        height = self.height
        for _ in range(3):  # a taller window can change the page's height (100vh elements)
            page = self.call("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
            if round(page["height"]) == height:
                break
            height = round(page["height"])
            self._window(self.width, height)
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=self.session, timeout=120)
        self._window(self.width, self.height)
        path.write_bytes(base64.b64decode(shot["data"]))

    def _window(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                         "deviceScaleFactor": 1, "mobile": False},
                  session=self.session)


# ------------------------------------------------------------------------------------------
# What the browser may load: the local server, and MathJax from the local npm copy.

@dataclass
class Requests:
    """Answers the browser's requests: the book from ``base``, MathJax from ``mathjax``."""

    base: str
    mathjax: Path | None
    refused: list[str] = field(default_factory=list)

    def __call__(self, browser: Browser, params: dict) -> None:
        url, rid = params["request"]["url"], params["requestId"]
        if url.startswith(self.base):
            browser.send("Fetch.continueRequest", {"requestId": rid}, browser.session)
            return
        match = MATHJAX_CDN.match(url.split("?")[0])
        if match and self.mathjax is not None:
            path = (self.mathjax / match.group(2)).resolve()
            if path.is_file() and self.mathjax.resolve() in path.parents:
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                browser.send("Fetch.fulfillRequest", {
                    "requestId": rid, "responseCode": 200,
                    "responseHeaders": [{"name": "Content-Type", "value": kind},
                                        {"name": "Access-Control-Allow-Origin", "value": "*"}],
                    "body": base64.b64encode(path.read_bytes()).decode()}, browser.session)
                return
        self.refused.append(url)
        browser.send("Fetch.failRequest", {"requestId": rid, "errorReason": "BlockedByClient"},
                     browser.session)


def local_server(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A server for ``root`` bound to a free port of 127.0.0.1, and its URL; start it with
    ``start(server)`` (after the browser is launched: no thread may run while it forks)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def start(server: http.server.ThreadingHTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def mathjax_version(pages: list[Path]) -> str | None:
    """The MathJax version the pages ask the CDN for (e.g. ``"3"``), None if none loads it."""
    versions = set()
    for page in pages:
        versions.update(m.group(1) for m in MATHJAX_CDN.finditer(page.read_text(errors="replace")))
    if len(versions) > 1:
        raise CheckError(f"the pages load different MathJax versions: {sorted(versions)}")
    return versions.pop() if versions else None


def local_mathjax(version: str, cache: Path) -> Path:
    """The ``es5`` folder's parent of the npm package ``mathjax@version``, installed on first use."""
    package = cache / "node_modules" / "mathjax"
    installed = json.loads((package / "package.json").read_text())["version"] if package.is_dir() else None
    if installed is None or not (installed == version or installed.startswith(version + ".")):
        npm = shutil.which("npm")
        if npm is None:
            raise CheckError(f"MathJax {version} is not in {cache} and npm is not installed to fetch it")
        cache.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix",
                               str(cache), f"mathjax@{version}"], capture_output=True, text=True)
        if done.returncode != 0:
            raise CheckError(f"npm install mathjax@{version} failed:\n{done.stderr[-2000:]}")
    return package


# ------------------------------------------------------------------------------------------
# The checks, run in the page once it has loaded. Each problem is {"kind", "detail"}.

PAGE_CHECKS = r"""
(async (timeoutMs) => {
  const problems = [];
  const add = (kind, detail) => problems.push({kind, detail});
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const short = (s, n = 110) => { s = s.replace(/\s+/g, " ").trim(); return s.length > n ? s.slice(0, n) + "…" : s; };

  // MathJax: wait until it has typeset the page.
  if (document.querySelector('script[src*="mathjax"]')) {
    const t0 = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && Date.now() - t0 < timeoutMs)
      await sleep(50);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
    else add("formula", "MathJax did not start");
  }
  // Images: load every one now (no lazy loading), and wait for each to load or fail.
  for (const img of document.images) img.loading = "eager";
  await Promise.all([...document.images].map(img => img.complete ? null : new Promise(r => {
    img.addEventListener("load", r); img.addEventListener("error", r); setTimeout(r, timeoutMs); })));
  for (const img of document.images)
    if (!img.complete || img.naturalWidth === 0) add("image", `not loaded: ${img.getAttribute("src")}`);
  // A numbered figure whose image is missing altogether (e.g. a glued matplotlib figure that the
  // kernel stored as the text "<Figure size ...>").
  for (const fig of document.querySelectorAll("article figure"))
    if (![...fig.querySelectorAll("img, svg, video, canvas")].some(e => !e.closest("button")))
      add("image", `figure without an image: ${short(fig.textContent)}`);

  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;

  // Formulas: MathJax errors, math elements left untypeset, TeX left in the text.
  // TeX errors and undefined macros (which MathJax draws as red text, not as an error) show in
  // the MathML that MathJax made from each formula.
  if (window.MathJax && MathJax.startup && MathJax.startup.document && MathJax.startup.toMML)
    for (const item of MathJax.startup.document.math)
      if (/<merror|mathcolor="red"/.test(MathJax.startup.toMML(item.root)))
        add("formula", `TeX error in: ${short(item.math)}`);
  for (const e of article.querySelectorAll(".math"))
    if (!e.querySelector("mjx-container") && !e.closest("mjx-container")) add("formula", `not typeset: ${short(e.textContent)}`);
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight, svg";
  const tex = /\\\(|\\\)|\\\[|\\\]|\\begin\{|(^|[^\\\w])\$\$?[^$\s][^$]*\$/;
  const role = /\{[a-z][\w:.-]*\}`/;  // a MyST role that was not parsed, e.g. {glue:text}`x`
  const table = /\|\s*:?[-\u2013\u2014]+:?\s*\|/;  // a table's |---| rule left as text (dashes maybe made typographic)
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest(skip)) continue;
    if (tex.test(n.nodeValue)) add("formula", `raw TeX in the text: ${short(n.nodeValue)}`);
    if (role.test(n.nodeValue)) add("markup", `raw MyST role in the text: ${short(n.nodeValue)}`);
    if (table.test(n.nodeValue)) add("markup", `Markdown table left as text: ${short(n.nodeValue)}`);
  }

  // Widgets: without a kernel (or the widget JavaScript) a widget shows nothing, so the figure it
  // redraws must be on the page at its default settings: an image in an output or figure above
  // the widget, in the same section (the chapter's "##" section, whose subsections count too).
  const outputs = [...article.querySelectorAll(".cell_output, figure")].filter(o => o.querySelector("img"));
  for (const w of article.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    const sections = [];
    for (let s = w.closest("section"); s; s = s.parentElement.closest("section")) sections.push(s);
    const scope = sections.length > 1 ? sections[sections.length - 2] : (sections[0] || article);
    const own = w.closest(".cell_output");
    const static_ = outputs.some(o => scope.contains(o) && (o === own ||
      (o.compareDocumentPosition(w) & Node.DOCUMENT_POSITION_FOLLOWING)));
    if (!static_) {
      const cell = w.closest(".cell");
      const code = cell ? cell.querySelector(".cell_input pre") : null;
      add("widget", `no static figure above the widget in its section: ${short(code ? code.textContent : w.textContent)}`);
    }
  }

  const layout = {images: document.images.length, formulas: document.querySelectorAll("mjx-container").length,
                  widgets: article.querySelectorAll('script[type*="widget-view"]').length};
  return {problems, layout};
})
"""

# Run after the screenshot: open the collapsed cells (hide-input, toggles) and measure every line.
WIDTH_CHECK = r"""
(() => {
  const problems = [];
  for (const d of document.querySelectorAll("details")) d.open = true;
  for (const b of document.querySelectorAll(".toggle-hidden, .toggle-details__container")) b.classList.remove("toggle-hidden");
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const right = article.getBoundingClientRect().right;
  for (const pre of article.querySelectorAll("pre")) {
    const box = pre.getBoundingClientRect();
    if (box.width === 0) continue;
    const hidden = pre.scrollWidth - pre.clientWidth;
    if (hidden > 1 || box.right > right + 1) {
      const lines = pre.textContent.split("\n");
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      const where = pre.closest(".cell_output") ? "output" : "code";
      problems.push({kind: "width", detail: `${where} line ${longest.length} characters, ${Math.max(hidden, box.right - right).toFixed(0)} px wider than the column (${pre.clientWidth} px): ${longest.trim().slice(0, 100)}`});
    }
  }
  // Display formulas: MathJax does not break them; a wide one scrolls inside its box.
  if (window.MathJax && MathJax.startup && MathJax.startup.document)
    for (const item of MathJax.startup.document.math) {
      const box = item.display && item.typesetRoot;
      if (!box || !article.contains(box) || box.getBoundingClientRect().width === 0) continue;
      const hidden = Math.max(box.scrollWidth - box.clientWidth, box.getBoundingClientRect().right - right);
      if (hidden > 1)
        problems.push({kind: "width", detail: `formula ${hidden.toFixed(0)} px wider than the column: ${item.math.replace(/\s+/g, " ").trim().slice(0, 100)}`});
    }
  return problems;
})()
"""


def check_page(browser: Browser, requests: Requests, url: str, shot: Path | None,
               timeout: float) -> tuple[list[dict], dict]:
    """Load ``url``, run the checks, write the screenshot; return (problems, counts)."""
    requests.refused.clear()
    browser.clear_events()
    nav = browser.call("Page.navigate", {"url": url}, session=browser.session)
    if nav.get("errorText"):
        return [{"kind": "page", "detail": f"did not load: {nav['errorText']}"}], {}
    browser.wait_event("Page.loadEventFired", timeout)
    found = browser.evaluate(f"{PAGE_CHECKS}({int(timeout * 1000)})", timeout=3 * timeout)
    if shot is not None:
        browser.screenshot(shot)
    problems = found["problems"] + browser.evaluate(WIDTH_CHECK)
    counts = dict(found["layout"], refused=len(requests.refused))
    return problems, counts


REDIRECT = re.compile(r"<meta[^>]+http-equiv=[\"']?refresh", re.I)


def built_pages(html: Path) -> list[Path]:
    """Every page of the built book: not Sphinx's own folders (``_static``, ``_sources``...) and
    not redirects (the root ``index.html`` only forwards to the book's first page)."""
    return sorted(p for p in html.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(html).parts[:-1])
                  and not REDIRECT.search(p.read_text(errors="replace")[:2000]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", nargs="?", type=Path, default=ROOT / "_build" / "html",
                        help="the built book (default: _build/html)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "page-check",
                        help="folder for the screenshots (default: _build/page-check)")
    parser.add_argument("--pages", nargs="*", default=None,
                        help="only these pages, relative to the built book (e.g. book/02_coding_rate.html)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium",
                        help="the Chromium executable (Debian package 'chromium')")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels")
    parser.add_argument("--height", type=int, default=900, help="window height in CSS pixels")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to load one page")
    parser.add_argument("--no-screenshots", action="store_true", help="check only")
    args = parser.parse_args(argv)

    try:
        if not (args.html / "index.html").is_file():
            raise CheckError(f"expected a built book with {args.html / 'index.html'}; "
                             "build it first: jupyter-book build .")
        if not Path(args.chromium).is_file():
            raise CheckError(f"no Chromium at {args.chromium} (Debian: apt-get install chromium)")
        pages = built_pages(args.html)
        if args.pages:
            wanted = {args.html / p for p in args.pages}
            missing = sorted(str(p) for p in wanted - set(pages))
            if missing:
                raise CheckError(f"not pages of the built book: {missing}")
            pages = sorted(wanted)
        version = mathjax_version(pages)
        mathjax = local_mathjax(version, ROOT / ".cache" / "page-check") if version else None
    except CheckError as err:
        print(f"check_pages: {err}", file=sys.stderr)
        return 2

    server, base = local_server(args.html)
    requests = Requests(base, mathjax)
    if not args.no_screenshots:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    try:
        browser = Browser(args.chromium, args.width, args.height, requests)
    except (CheckError, OSError) as err:
        server.server_close()
        print(f"check_pages: Chromium did not start: {err}", file=sys.stderr)
        return 2
    start(server)
    try:
        for page in pages:
            name = page.relative_to(args.html).as_posix()
            shot = None if args.no_screenshots else args.out / (name.replace("/", "__")[:-5] + ".png")
            try:
                problems, counts = check_page(browser, requests, base + name, shot, args.timeout)
            except CheckError as err:
                problems, counts = [{"kind": "page", "detail": str(err)}], {}
            failed += bool(problems)
            summary = ", ".join(f"{v} {k}" for k, v in counts.items())
            print(f"{'FAIL' if problems else 'ok  '} {name}  ({summary})")
            for p in problems:
                print(f"     {p['kind']}: {p['detail']}")
    finally:
        browser.close()
        server.shutdown()
    where = "" if args.no_screenshots else f"; screenshots in {args.out}"
    print(f"{len(pages) - failed} of {len(pages)} pages pass{where}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
