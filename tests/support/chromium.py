"""Launch Debian's Chromium through playwright (`playwright install` is not available here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Browser, Playwright

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def chromium_path() -> Path | None:
    """$CHROMIUM, else /usr/bin/chromium, else whatever `chromium` is on PATH."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    path = chromium_path()
    if path is None:
        raise RuntimeError("no Chromium found: install Debian's chromium or set $CHROMIUM")
    return playwright.chromium.launch(
        executable_path=str(path), headless=True, args=list(CHROMIUM_ARGS)
    )
