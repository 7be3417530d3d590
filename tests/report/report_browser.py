"""Render a report in headless Chromium and read back what the page showed.

A probe script is inserted as the first element of ``<head>`` (before the report's own
Content-Security-Policy, so the policy does not block it). It records script errors, failed
resource loads and CSP violations, and on ``load`` writes a JSON summary into the DOM:
the decision text, the thickness text and, per ``<svg>``, its child count and rendered size.
``chromium --dump-dom`` then prints the DOM after load, which the test parses.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

PROBE = """<script>
window.__probe = {errors: []};
window.addEventListener('error', function (e) {
  var t = e.target && e.target !== window ? (e.target.src || e.target.href || e.target.tagName)
                                          : (e.message || 'error');
  window.__probe.errors.push('error: ' + t);
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.__probe.errors.push('rejection: ' + e.reason);
});
document.addEventListener('securitypolicyviolation', function (e) {
  window.__probe.errors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI);
});
window.addEventListener('load', function () {
  var svgs = Array.prototype.map.call(document.querySelectorAll('svg'), function (s) {
    var b = s.getBBox();
    return {id: s.id, children: s.childElementCount, width: b.width, height: b.height};
  });
  var d = document.getElementById('decision');
  var t = document.getElementById('thickness');
  var out = document.createElement('pre');
  out.id = '__probe';
  out.textContent = JSON.stringify({errors: window.__probe.errors, svgs: svgs,
    decision: d ? d.innerText : null, thickness: t ? t.innerText : null,
    title: document.title, text: document.body.innerText});
  document.body.appendChild(out);
});
</script>"""


def render(page: Path, timeout_s: float = 45.0) -> dict[str, Any]:
    """Load ``page`` (a copy with the probe) in Chromium; return the probe's summary."""
    assert CHROMIUM is not None
    html = page.read_text(encoding="utf-8")
    probed = html.replace("<head>", "<head>" + PROBE, 1)
    assert probed != html, "page has no <head>"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(probed, encoding="utf-8")
        profile = Path(tmp) / "profile"
        profile.mkdir()
        proc = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=3000",
             "--dump-dom", copy.as_uri()],
            capture_output=True, text=True, timeout=timeout_s)
    m = re.search(r'<pre id="__probe">(.*?)</pre>', proc.stdout, re.S)
    if m is None:
        raise AssertionError(f"probe did not report (exit {proc.returncode}); stderr tail: "
                             f"{proc.stderr[-800:]}")
    text = (m.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&amp;", "&"))
    result: dict[str, Any] = json.loads(text)
    result["console_errors"] = [ln for ln in proc.stderr.splitlines()
                                if "CONSOLE" in ln and ("Uncaught" in ln or "Error" in ln)]
    return result
