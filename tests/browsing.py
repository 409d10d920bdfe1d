"""Headless Chromium for the browser tests: Debian's chromium (Playwright's own download is not
available here) with WebGL on SwiftShader, and the two screen sizes every page is checked at."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

CHROMIUM = os.environ.get("PLINTH_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORTS = {"desktop": dict(viewport={"width": 1280, "height": 800}),
             "phone": dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)}


@contextmanager
def chromium() -> Iterator:
    """One launched browser (Playwright's Browser), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
