"""The two web pages: ``/`` (studies) and ``/studies/{name}`` (plot, front, trials).

Plain server-rendered HTML plus one vanilla script (``static/study.js``) that reads the JSON
API; no build step. The plot uses plotly.js from the installed plotly package, served here at
``/static/plotly.min.js``: the pages work without network access.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from autopeft import __version__

router = APIRouter(include_in_schema=False)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def plotly_js() -> Path:
    """plotly.min.js as bundled in the plotly Python package."""
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():  # pragma: no cover - a broken plotly install
        raise FileNotFoundError(f"plotly.min.js not found at {path}")
    return path


def _page(title: str, body: str, *, head: str = "", attrs: str = "") -> HTMLResponse:
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · autopeft</title>
<link rel="stylesheet" href="/static/style.css">{head}</head>
<body{attrs}><header><a href="/">autopeft</a> <span class="muted">{__version__}</span>
<a class="right" href="/docs">API</a></header>
<main>{body}</main></body></html>""")


def _progress(summary: Any) -> str:
    budget = int((summary.budget or {}).get("trials") or 0)
    if not budget:
        return f"{summary.n_trials}"
    done = min(summary.n_trials, budget)
    return (f'<progress value="{done}" max="{budget}"></progress> '
            f"{summary.n_trials}/{budget}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    studies = request.app.state.store.list_studies()
    rows = "".join(
        f'<tr data-study="{html.escape(s.name)}"><td><a href="/studies/{html.escape(s.name)}">'
        f"{html.escape(s.name)}</a></td><td class=\"status {html.escape(s.status)}\">"
        f"{html.escape(s.status)}</td><td>{html.escape(s.task)}</td>"
        f"<td>{html.escape(s.model)}</td><td>{_progress(s)}</td><td>{s.n_completed}</td>"
        f"<td>{_cell(s.best_primary)} <span class=\"muted\">{html.escape(s.primary)}</span></td>"
        f"<td>{s.created_at:%Y-%m-%d %H:%M}</td></tr>"
        for s in reversed(studies))
    running = any(s.status == "running" for s in studies)
    head = '\n<meta http-equiv="refresh" content="5">' if running else ""
    body = ("<h1>Studies</h1>" + (
        "<table><thead><tr><th>study</th><th>status</th><th>task</th><th>model</th>"
        "<th>trials</th><th>completed</th><th>best</th><th>created (UTC)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>" if studies else
        "<p>No studies yet: start one with <code>autopeft search</code> or "
        "<code>POST /v1/searches</code>.</p>")
        + f'<p class="muted">store {html.escape(request.app.state.store.safe_url)}</p>')
    return _page("studies", body, head=head)


@router.get("/studies/{name}", response_class=HTMLResponse)
def study_page(request: Request, name: str) -> HTMLResponse:
    study = request.app.state.store.get_study(name)
    if study is None:
        page = _page("no such study", f"<h1>No study named {html.escape(name)}</h1>"
                                      '<p><a href="/">All studies</a></p>')
        page.status_code = 404
        return page
    quoted = html.escape(name)
    from autopeft.store import TRIAL_STATUSES

    methods = sorted(((study.space or {}).get("methods") or {}).keys())
    config = html.escape(json.dumps({"name": name, "primary": study.primary,
                                     "objectives": [list(o) for o in study.objectives],
                                     "statuses": list(TRIAL_STATUSES), "methods": methods}))
    body = f"""<h1>{quoted}</h1>
<p>{html.escape(study.task)} · {html.escape(study.model)} · space
{html.escape(study.space_name)}</p>
<p id="progress"><span id="status" class="status">{html.escape(study.status)}</span>
<progress id="bar" value="0" max="1"></progress> <span id="count"></span></p>
<div id="plot"></div>
<h2>Pareto front <a class="button" id="csv" href="/v1/studies/{quoted}/front?format=csv"
download="{quoted}-front.csv">Download CSV</a></h2>
<table id="front"><thead></thead><tbody></tbody></table>
<h2>Trials <span id="total" class="muted"></span></h2>
<p><label>status <select id="f-status"><option value="">all</option></select></label>
<label>method <select id="f-method"><option value="">all</option></select></label>
<button id="prev">&larr; previous</button> <span id="page"></span>
<button id="next">next &rarr;</button></p>
<table id="trials"><thead></thead><tbody></tbody></table>"""
    head = ('\n<script src="/static/plotly.min.js"></script>'
            '\n<script defer src="/static/study.js"></script>')
    return _page(name, body, head=head, attrs=f' data-config="{config}"')


@router.get("/static/plotly.min.js")
def plotly_bundle() -> FileResponse:
    return FileResponse(plotly_js(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
