"""Screenshots of a month's outputs for docs/: the report, the model card, the Data Docs and a sheet.

    python -m pipelines.screenshots --month YYYY-MM [--sheet outreach.xlsx] [OUT_DIR (docs/)]

Paths come from the configuration, as for `mimamori` (MIMAMORI_WORK or mimamori.toml). The pages
are shot by the project's one headless Chromium (pipelines/browser.py) with the network blocked,
so a screenshot shows what an offline PC shows; a page that tried to fetch anything is refused.
The sheet is printed by LibreOffice to PDF and turned into PNG by pdftoppm when both are
installed, otherwise rendered from the workbook's own layout (reports.sheet_checks.preview_html).
Use only synthetic wards: a sheet holds names and addresses.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import load_workbook

from pipelines.browser import chromium_browser, offline_page
from pipelines.catalog import runs, validation
from pipelines.config import Config, load_config
from reports.sheet_checks import preview_html

if TYPE_CHECKING:   # Playwright is a dev extra: only its types here
    from playwright.sync_api import Browser


class PageFetched(RuntimeError):
    """A page asked the network for something: its screenshot would not be what an offline PC shows."""


def shoot_html(browser: "Browser", page: Path, out: Path, width: int = 1280, height: int = 900,
               full_page: bool = True) -> Path:
    """PNG of a local HTML file, offline (PageFetched if it tried to load anything not on disk)."""
    with offline_page(browser, width, height) as offline:
        offline.open(page).screenshot(path=str(out), full_page=full_page)
    if offline.blocked:
        raise PageFetched(f"{page} tried to fetch {len(offline.blocked)} resource(s), e.g. {offline.blocked[0]}")
    return out


def shoot_sheet(browser: "Browser", xlsx: Path, out: Path, sheet: str | None = None, dpi: int = 110) -> Path:
    """PNG of one sheet as printed (LibreOffice → PDF → pdftoppm), else of its HTML preview."""
    book = load_workbook(xlsx)
    name = sheet or book.sheetnames[1 if len(book.sheetnames) > 1 else 0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if shutil.which("soffice") and shutil.which("pdftoppm"):
            for other in book.sheetnames:          # print only the wanted sheet
                if other != name:
                    del book[other]
            single = tmp / "sheet.xlsx"
            book.save(single)
            subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp}/lo", "--convert-to", "pdf",
                            "--outdir", str(tmp), str(single)], check=True, capture_output=True, timeout=300)
            subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile",
                            str(tmp / "sheet.pdf"), str(tmp / "page")], check=True, capture_output=True, timeout=120)
            shutil.copy(tmp / "page.png", out)
        else:
            page = tmp / "sheet.html"
            page.write_text(preview_html(load_workbook(xlsx), name), encoding="utf-8")
            shoot_html(browser, page, out, 1400, 900, full_page=False)
    return out


def month_pages(cfg: Config, month: str) -> dict[str, Path]:
    """docs/ name -> the month's page it shows (those that exist)."""
    pages = {"report.png": runs.report_file(cfg, month),
             "model_card.png": runs.report_dir(cfg, month) / "model_card.html",
             "data_docs.png": validation.data_docs_path(cfg.work, month)}
    return {name: path for name, path in pages.items() if path.is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs"))
    parser.add_argument("--month", required=True)
    parser.add_argument("--sheet", type=Path, help="a released outreach.xlsx (synthetic ward only)")
    parser.add_argument("--sheet-name")
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    pages = month_pages(cfg, args.month)
    if not pages:
        parser.error(f"no report, model card or Data Docs for {args.month} under {cfg.work}")
    args.out.mkdir(parents=True, exist_ok=True)
    with chromium_browser() as browser:
        for name, page in pages.items():
            print(shoot_html(browser, page, args.out / name))
        if args.sheet is not None:
            print(shoot_sheet(browser, args.sheet, args.out / "sheet.png", args.sheet_name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
