"""report.html of a tiny `skillgym run kitchen`, opened in headless Chromium: every image loads, no
JavaScript error, and a screenshot lands next to it."""

import json
import re
import shutil
import subprocess

import pytest

from skillgym.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Injected before the page's own content: record script errors and images that fail to decode.
CHECKER = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.target.src)), true);
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length;
  document.title = "checked images=" + document.images.length + " broken=" + broken +
                   " errors=" + window.__errors.length;
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def test_report_shows_every_stage(tiny_run):
    tiny_run, _ = tiny_run
    page = (tiny_run / "report.html").read_text()
    for heading in ("1. Data", "2. Skill extraction", "3. Skill library", "4. SkillSAC", "How this run was made"):
        assert heading in page
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert set(summary["timings"]) == {"dataset", "skill extraction", "skill learning", "SkillSAC"}
    for figure in ("contact_sheet.png", "learning_curve.png", "policy.gif"):
        assert (tiny_run / "report" / figure).stat().st_size > 0
    assert page.count("<img") >= 7 and "http" not in re.sub(r"data:image/[a-z]+;base64,[^\"]+", "", page)


def test_report_gives_the_numbers_of_the_summary(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run[0], run)
    summary = json.loads((run / "summary.json").read_text())
    summary["rl"]["final"].update(return_mean=1.25, return_std=0.5)
    summary["dataset"].update(kept=7, attempted=9)
    (run / "summary.json").write_text(json.dumps(summary))
    page = write_report(run).read_text()
    assert "1.25 ± 0.50" in page and "7 / 9" in page


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package chromium) is not installed")
def test_report_renders_in_a_browser(tiny_run, tmp_path):
    tiny_run, _ = tiny_run
    checked = tmp_path / "checked.html"
    checked.write_text((tiny_run / "report.html").read_text().replace("<head>", "<head>" + CHECKER, 1))
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", checked.as_uri())
    title = re.search(r"<title>(.*?)</title>", dom.stdout)
    assert title, dom.stderr[-2000:]
    images, broken, errors = map(int, re.findall(r"\d+", title.group(1)))
    assert images >= 7 and broken == 0 and errors == 0, title.group(1)
    screenshot = tiny_run / "report.png"
    chromium("--window-size=1200,4000", "--hide-scrollbars", f"--screenshot={screenshot}",
             (tiny_run / "report.html").as_uri())
    assert screenshot.stat().st_size > 50_000
