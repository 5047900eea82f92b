"""Regenerate docs/img/report.png: the bundled sample log's backfill report, as Chromium shows it.

    python scripts/report_picture.py [--out docs/img/report.png] [--width 1280] [--height 2000]

Needs Debian's Chromium (/usr/bin/chromium) and Playwright for Python (no browser download).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from importer import resources
from importer.backfill import backfill
from importer.html import backfill_page, write_page
from importer.options import BackfillOptions, OutputOptions

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "report.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000, help="Height of the picture (the page's top part).")
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "import"
        report = backfill(
            [resources.sample_data_dir() / "access.log"],
            "example.com",
            BackfillOptions(site_timezone="UTC", out_dir=out),
            outputs=OutputOptions(rejects=None, failed=None),
        )
        # The bundled sample covers two days; a fixed out_dir keeps the picture free of temp paths.
        report.out_dir = "import/"
        html = backfill_page(report)
        page_path = write_page(out / "report.html", html)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": options.width, "height": options.height})
            page.goto(page_path.resolve().as_uri())
            options.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(options.out))
            browser.close()
    print(
        f"{options.out}: {options.out.stat().st_size:,} bytes; the sample's report.html: {len(html.encode()):,} bytes"
    )


if __name__ == "__main__":
    main()
