"""A real ``autopeft serve`` (uvicorn) and the study page in headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``), driven by python
playwright without a browser download. Under CI (``CI=true``) a missing Chromium FAILS the
test; elsewhere it is skipped. The screenshot goes to ``$AUTOPEFT_ARTIFACTS_DIR`` (CI keeps
it) or the test's tmp folder; the path is printed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def _chromium() -> str:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return str(CHROMIUM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(store, tmp_path, make_study):
    """``autopeft serve`` on a free port over a store with two studies."""
    make_study(store, "demo", artifacts=tmp_path / "art", trials=30, seed=3)
    make_study(store, "other", trials=4, status="running", seed=4)
    port = _free_port()
    log = open(tmp_path / "serve.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "autopeft.cli.main", "serve", "--port",
                             str(port), "--storage", store.url, "--log-dir", str(tmp_path)],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        else:
            pytest.fail("serve did not answer /healthz within a minute")
        log.seek(0)
        assert proc.poll() is None, log.read()
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        log.seek(0)
        printed = log.read()
        log.close()
        assert "Traceback" not in printed, printed


def test_study_page_shows_the_stored_trials_and_front(server, store, tmp_path):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    cli = subprocess.run([sys.executable, "-m", "autopeft.cli.main", "front", "--study", "demo",
                          "-f", "json", "--storage", store.url],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    front = json.loads(cli.stdout)
    completed = {(t.number, t.trainable_params, t.primary_metric)
                 for t in store.trials("demo", status="completed")}
    assert len(completed) == 24 and front

    out = Path(os.environ.get("AUTOPEFT_ARTIFACTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shot = out / "serve-study-page.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda req: errors.append(req.url))
            page.goto(server + "/")
            listed = page.locator("tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.study)")
            assert sorted(listed) == ["demo", "other"]
            assert "running" in page.locator("tr[data-study=other]").inner_text()

            page.goto(server + "/studies/demo")
            page.wait_for_function("document.body.dataset.ready === '1' || "
                                   "document.body.dataset.error !== undefined", timeout=60_000)
            assert page.evaluate("document.body.dataset.error") is None
            traces = page.evaluate("""() => document.getElementById('plot').data.map(
                t => ({meta: t.meta, x: Array.from(t.x), y: Array.from(t.y),
                       n: Array.from(t.customdata)}))""")
            points = {(n, x, y) for t in traces if t["meta"] == "trials"
                      for n, x, y in zip(t["n"], t["x"], t["y"], strict=True)}
            assert points == completed
            (marked,) = [t for t in traces if t["meta"] == "front"]
            assert marked["n"] == [r["number"] for r in front]

            cells = page.locator("#front tbody tr").evaluate_all("""rows => rows.map(r =>
                Object.fromEntries(Array.from(r.cells).map(
                    c => [c.dataset.key, JSON.parse(c.dataset.value)])))""")
            assert len(cells) == len(front)
            for shown, row in zip(cells, front, strict=True):
                assert shown == {k: row[k] for k in shown}, (shown, row)
            assert {"number", "method", "accuracy", "trainable_params"} <= set(cells[0])

            trial_rows = page.locator("#trials tbody tr").count()
            assert trial_rows == 30
            assert page.locator("#count").inner_text().startswith("30/30 trials")
            href = page.locator("#csv").get_attribute("href")
            with urllib.request.urlopen(server + href) as r:
                assert r.read().decode().count("\n") == len(front) + 1
            page.screenshot(path=str(shot), full_page=True)
            assert errors == []
        finally:
            browser.close()
    print(f"screenshot of the study page: {shot}")
    assert shot.stat().st_size > 10_000


def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        _chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _chromium()
