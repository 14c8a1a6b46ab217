"""Render a report and a visiting sheet to PNG, to look at them (and for docs/ screenshots).

    python -m pipelines.screenshots REPORT.html SHEET.xlsx OUT_DIR [--sheet NAME]

The report is shot by headless Chromium; the sheet is printed by LibreOffice to PDF and turned
into PNG by pdftoppm when both are installed, otherwise rendered from the workbook's own
layout (reports.sheet_checks.preview_html) and shot by Chromium. Use only synthetic wards: a sheet
holds names and addresses.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from openpyxl import load_workbook

from reports.sheet_checks import preview_html

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    return next((b for b in CHROMIUM_NAMES if shutil.which(b)), None)


def shoot_html(page: Path, out: Path, width: int = 1280, height: int = 4000) -> Path:
    """Screenshot of a local HTML file (no network: the page must be self-contained)."""
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("headless Chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--no-first-run", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--screenshot={out}", f"--window-size={width},{height}",
                        Path(page).resolve().as_uri()], check=True, capture_output=True, timeout=300)
    return out


def shoot_sheet(xlsx: Path, out: Path, sheet: str | None = None, dpi: int = 110) -> Path:
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
            shoot_html(page, out, 1400, 900)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("sheet", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--sheet-name")
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(shoot_html(args.report, args.out / "report.png", height=args.height))
    print(shoot_sheet(args.sheet, args.out / "sheet.png", args.sheet_name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
