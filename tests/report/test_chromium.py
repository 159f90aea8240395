"""The report in a real browser: headless Chromium renders it with no console message at all.

The report has no script, and its Content-Security-Policy forbids every load that is not a data: image,
so any console line would be an error: a CSP violation (something fetched), a broken image, a parse
problem. A control page shows that this check does catch such errors. Skipped without Chromium
(Debian: apt-get install -y chromium).
"""

import shutil
import subprocess

import pytest
from helpers.results import sweep_fixture

from quantscope.report.html import render_report, write_report

pytestmark = pytest.mark.integration

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def headless(url: str, tmp_path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", *extra, url],
        capture_output=True, text=True, timeout=120,
    )


def console_lines(p: subprocess.CompletedProcess) -> list[str]:
    # Chromium logs every page console message (errors, CSP violations, uncaught exceptions) as CONSOLE
    return [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln]


@needs_chromium
def test_console_check_catches_errors_on_a_control_page(tmp_path):
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'; img-src data:; script-src 'unsafe-inline'\"></head><body>"
                    '<img src="http://example.invalid/x.png"><script>console.error("control-error");</script>'
                    "</body></html>")
    p = headless(page.as_uri(), tmp_path, "--dump-dom")
    lines = console_lines(p)
    assert any("control-error" in ln for ln in lines), p.stderr[-2000:]
    assert any("Content Security Policy" in ln for ln in lines), p.stderr[-2000:]


@needs_chromium
def test_report_renders_in_headless_chromium_without_console_errors(tmp_path):
    rows = [(i + 1, r) for i, r in enumerate(sweep_fixture())]
    report = write_report(tmp_path / "report.html", render_report(rows))
    p = headless(report.as_uri(), tmp_path, "--dump-dom")
    assert p.returncode == 0, p.stderr[-2000:]
    assert console_lines(p) == []
    assert "Ship llamacpp/q8_0/fp32" in p.stdout  # the DOM was built from the file
    assert p.stdout.count('<img src="data:image/svg+xml;base64,') == 11
    shot = tmp_path / "shot.png"
    p = headless(report.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    assert p.returncode == 0 and console_lines(p) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
