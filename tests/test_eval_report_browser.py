"""The HTML report rendered in headless Chromium: plots and tables present, screenshot kept.

The screenshot is written to out/test-artifacts/eval-report.png (or $NEURALCODEC_ARTIFACTS).
Skips, with the reason, when no Chromium is installed (Debian: apt-get install chromium).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from neuralcodec.cli import main
from conftest import synthetic

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-extensions"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver); "
                "the report was not rendered")


class Census(HTMLParser):
    """Counts the report's elements by tag and class."""

    def __init__(self):
        super().__init__()
        self.found: dict[str, int] = {}
        self.data_imgs = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for cls in (a.get("class") or "").split():
            self.found[f"{tag}.{cls}"] = self.found.get(f"{tag}.{cls}", 0) + 1
        if tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
            self.data_imgs += 1




def test_report_renders_in_chromium(tmp_path, capsys):
    from PIL import Image

    browser = chromium()
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(2):
        Image.fromarray(synthetic(180, 200, i)).save(src / f"im{i}.png")
    out = tmp_path / "out"
    assert main(["eval", "images", str(src), "--codecs", "jpeg,webp", "--out", str(out),
                 "--qualities", "jpeg=10,30,60,90", "--qualities", "webp=10,30,60,90"]) == 0
    capsys.readouterr()
    url = (out / "report.html").resolve().as_uri()
    profile = tmp_path / "profile"

    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    census = Census()
    census.feed(dom.stdout)
    assert census.found.get("img.rd-plot", 0) == 2  # psnr-rgb and ms-ssim
    assert census.found.get("table.bd-table", 0) == 2
    assert census.found.get("table.per-image", 0) == 2
    assert census.found.get("table.times", 0) == 1
    assert census.found.get("img.crop", 0) == 3  # original + two codecs
    assert census.data_imgs == 5

    artefacts = Path(os.environ.get("NEURALCODEC_ARTIFACTS", REPO / "out" / "test-artifacts"))
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "eval-report.png"
    shot.unlink(missing_ok=True)
    run = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1800",
                          f"--screenshot={shot}", url], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (1800, 1280)
    assert pixels.std() > 20  # not a blank page
    # matplotlib's first two line colours (tab:blue, tab:orange) are on screen: the plots drew
    for colour in ((31, 119, 180), (255, 127, 14)):
        assert (np.abs(pixels - colour).sum(-1) < 40).sum() > 100, colour
