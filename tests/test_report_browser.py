"""report.html in a real browser: headless Chromium loads it, every image decodes, the page
is not blank. Skipped with a reason where Chromium is not installed (.ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
import zlib
from pathlib import Path  # noqa: F401  (type of tmp_path)

import pytest

from harness.measure.results import SessionInfo
from reports import build_report, write_report
from tests.conftest import run_cli
from tests.test_report_sections import study_cells
from tests.test_reports import MACHINE, png_size

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(Debian: apt-get install chromium; .ci/run does it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Runs after load: records each image's decoded width, so a broken image reads as 0.
PROBE = """<script>window.addEventListener('load', () => {
  const w = [...document.images].map(i => i.complete ? i.naturalWidth : 0);
  document.body.setAttribute('data-widths', w.join(','));
});</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _rows(png: bytes) -> list[bytes]:
    """Decode a non-interlaced 8-bit RGB(A) PNG's scanlines (filters undone) — enough to
    measure whether anything was drawn, without an image library."""
    w, h = png_size(png)
    color = png[25]
    bpp = {2: 3, 6: 4}[color]
    data, pos = b"", 8
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        if png[pos + 4:pos + 8] == b"IDAT":
            data += png[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw, stride, out, prev = zlib.decompress(data), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line))
        prev = line
    return out


def test_report_html_renders_in_chromium(tmp_path):
    report = build_report(SessionInfo(id="browser", started=1.7e9, status="finished"),
                          study_cells(), {**MACHINE, "caches": {"l3": 32 * 2**20}})
    paths = write_report(report, tmp_path / "out")
    html = paths["html"]
    n_images = html.read_text().count("<img ")
    assert n_images >= 4

    probed = tmp_path / "probed.html"  # the same page plus the probe script
    probed.write_text(html.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    widths = dom.stdout.split('data-widths="', 1)[1].split('"', 1)[0].split(",")
    assert len(widths) == n_images and all(int(w) > 0 for w in widths), widths

    shot = tmp_path / "report.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400",
                     "--hide-scrollbars", html.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    rows = _rows(shot.read_bytes())
    distinct = {px for r in rows[::8] for px in (r[i:i + 3] for i in range(0, len(r), 24))}
    assert len(distinct) > 50  # text, tables and figures, not a blank page


# Runs after load: how wide the page scrolls, against the window, in CSS pixels.
WIDTH_PROBE = """<script>window.addEventListener('load', () => {
  const d = document.scrollingElement;
  document.body.setAttribute('data-scroll', d.scrollWidth + ',' + d.clientWidth);
});</script>"""


def _scroll_width(tmp: Path, page: Path, window: int) -> tuple[int, int]:
    probed = tmp / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("</body>", WIDTH_PROBE + "</body>"))
    dom = _chromium(tmp, f"--window-size={window},2000", "--hide-scrollbars",
                    "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    scroll, client = dom.stdout.split('data-scroll="', 1)[1].split('"', 1)[0].split(",")
    return int(scroll), int(client)


def test_report_and_compare_pages_fit_a_1280_pixel_window(tmp_path):
    """A real machine's session (its latency table is wider than the text) and a comparison of
    two machines: no horizontal scrollbar on the page at 1280 px; wide tables scroll in their
    own box. Measured in the browser, since only layout knows a table's width."""
    from tests.compare_support import AMD, INTEL

    out = tmp_path / "report"
    proc = run_cli("report", "--store", str(INTEL), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    cmp = tmp_path / "compare"
    proc = run_cli("compare", str(INTEL), str(AMD), "--out", str(cmp))
    assert proc.returncode == 0, proc.stderr
    for page in (out / "report.html", cmp / "compare.html"):
        scroll, client = _scroll_width(tmp_path, page, 1280)
        assert client == 1280 and scroll <= client, (page.name, scroll, client)
    # A narrower window (a laptop's half screen): figures and text shrink, tables still scroll
    # in their boxes, so the page itself still fits.
    scroll, client = _scroll_width(tmp_path, out / "report.html", 700)
    assert scroll <= client, ("report.html at 700 px", scroll, client)
