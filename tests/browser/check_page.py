"""Loads a local HTML page in headless Chromium (the system's, through Playwright) and prints, as
JSON, what a reader would meet: console errors, page errors, requests that left the file, and the
rendered size of every chart (inline <svg> in a <figure class="chart">); with a second argument,
a full-page screenshot there.

Usage: check_page.py PAGE.html [SHOT.png]
"""

import json
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no Chromium on PATH: install it (Debian: apt-get install chromium)")


def main() -> None:
    page_path = Path(sys.argv[1]).resolve()
    shot = sys.argv[2] if len(sys.argv) > 2 else None
    console, errors, requests = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: console.append({"type": m.type, "text": m.text}))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri(), wait_until="load")
        charts = page.evaluate(
            """() => Array.from(document.querySelectorAll('figure.chart')).map(f => {
                 const svg = f.querySelector('svg');
                 const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                 return {label: f.getAttribute('aria-label'), width: r.width, height: r.height,
                         texts: svg ? svg.querySelectorAll('text').length : 0,
                         shapes: svg ? svg.querySelectorAll('path, polyline, circle, line, rect').length : 0};
               })"""
        )
        sections = page.evaluate("() => Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)")
        tables = page.evaluate("() => document.querySelectorAll('table').length")
        # What runs past the page's width: the page itself, or a table wider than its box.
        overflow = page.evaluate(
            """() => {
                 const out = [];
                 if (document.documentElement.scrollWidth > window.innerWidth) out.push('page');
                 document.querySelectorAll('table').forEach((t, i) => {
                   const box = t.parentElement.getBoundingClientRect().width;
                   if (t.scrollWidth > box + 1) out.push('table ' + i + ': ' + t.scrollWidth + ' px in ' + box);
                 });
                 return out;
               }"""
        )
        if shot:
            page.screenshot(path=shot, full_page=True)
        browser.close()
    others = [u for u in requests if u != page_path.as_uri()]
    print(json.dumps({"console": console, "errors": errors, "requests": others, "charts": charts,
                      "sections": sections, "tables": tables, "overflow": overflow}))


if __name__ == "__main__":
    main()
