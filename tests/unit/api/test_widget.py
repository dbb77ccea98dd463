"""The chat widget's page and files: strict CSP, no inline script, text-only rendering in the script."""

from __future__ import annotations

import re

from api.widget import WEB_DIR


def test_page_is_served_with_a_strict_csp(make_client):
    client = make_client("unused")
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", r.text, flags=re.S)
    assert scripts == [""]  # one external script, nothing inline
    assert 'src="/widget/widget.js"' in r.text and " style=" not in r.text and "http" not in r.text  # no CDN


def test_widget_files_are_served_and_unknown_ones_are_json_404(make_client):
    client = make_client("unused")
    js = client.get("/widget/widget.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["x-content-type-options"] == "nosniff"
    assert client.get("/widget/widget.css").headers["content-type"].startswith("text/css")
    missing = client.get("/widget/nope.js")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}


def test_the_script_never_parses_server_text_as_html():
    js = (WEB_DIR / "widget" / "widget.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    assert 'setAttribute("style"' not in js and ".style." not in js  # no inline styles under the CSP
    assert "http://" not in js  # no CDN or other third-party loads
