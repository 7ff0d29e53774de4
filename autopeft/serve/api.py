"""The JSON API under ``/v1``: studies, fronts, trials, adapters and searches.

Every study, front and trial object is built by the functions behind ``autopeft studies``,
``front`` and ``trials`` (:func:`autopeft.report.study_rows`, :func:`~autopeft.report.trial_rows`
and :func:`~autopeft.report.render`), so ``GET /v1/studies/{name}/front`` returns exactly
what ``autopeft front -f json`` prints. Unknown studies and trials are 404s, refused input a
422 naming the field, and every message mentions the store only without its password.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.background import BackgroundTask

from autopeft import __version__
from autopeft.errors import AutopeftError
from autopeft.serve.runs import Conflict
from autopeft.serve.searches import SERVER_OWNED, FieldError, body_model, parse_request

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="the server's API token")
MAX_PAGE = 10_000
JSON = "application/json"


def _state(request: Request) -> Any:
    return request.app.state


def require_token(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None,
                                         Depends(_bearer)]) -> None:
    """Guard of every mutating endpoint: read-only servers refuse, others want the token."""
    config = _state(request).config
    if config.read_only:
        raise HTTPException(403, "this server is read-only (started with --read-only)")
    if config.token is None:  # only ever on a loopback address (ServeConfig checks)
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), config.token.encode()):
        raise HTTPException(401, "missing or wrong API token: send the header "
                                 "'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})


def _study(request: Request, name: str) -> Any:
    study = _state(request).store.get_study(name)
    if study is None:
        raise HTTPException(404, f"no study named '{name}' in {_state(request).store.safe_url}; "
                                 "GET /v1/studies lists them")
    return study


def _json(text: str, **headers: str) -> Response:
    return Response(text, media_type=JSON, headers=headers)


def front_rows(store: Any, study: Any) -> Any:
    """The rows of ``autopeft front -f json`` (and csv)."""
    from autopeft.front import front_trials
    from autopeft.report import front_rows as rows_of_front

    return rows_of_front(front_trials(store, study.name), detailed=True, primary=study.primary)


class FrontCache:
    """Rendered fronts of studies whose search is over, recomputed when they change.

    Recomputing the front of 100,000 trials costs tens of milliseconds per request, and the
    front of a finished (or interrupted, failed) study changes only when trials are added,
    which a resume does after setting the study ``running`` again. So a front is reused
    while the study is not running and its (id, status, finished_at, trial count) are those
    it was computed for; the fronts of running studies are always recomputed.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], tuple[tuple, str]] = OrderedDict()
        self._lock = threading.Lock()

    def rendered(self, store: Any, study: Any, fmt: str) -> str:
        """``autopeft front -f <fmt>``'s text for ``study``."""
        from autopeft.report import render
        from autopeft.status import StudyStatus

        if study.status == StudyStatus.RUNNING:
            return render(front_rows(store, study), fmt)
        total, _ = store.trial_page(study.name, limit=0)
        key = (study.id, study.status, study.finished_at, total)
        slot = (study.name, fmt)
        with self._lock:
            hit = self._items.get(slot)
            if hit is not None and hit[0] == key:
                self._items.move_to_end(slot)
                return hit[1]
        text = render(front_rows(store, study), fmt)
        with self._lock:
            self._items[slot] = (key, text)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return text


def study_object(summary: Any, run: Any = None) -> dict[str, Any]:
    """A study as ``autopeft studies -f json`` shows it, plus its budget and search."""
    from autopeft.report import render, study_rows

    (row,) = json.loads(render(study_rows([summary]), "json"))
    return {**row, "budget": summary.budget,
            "search": None if run is None else run.to_dict()}


# -- reading -------------------------------------------------------------------------------

@router.get("/healthz", tags=["health"])
def healthz(request: Request) -> dict[str, Any]:
    """Liveness and store reachability."""
    state = _state(request)
    try:
        state.store.get_study("")
    except AutopeftError as exc:
        raise HTTPException(503, str(exc)) from None
    except Exception as exc:  # the database went away: say so without a traceback
        raise HTTPException(503, f"store {state.store.safe_url} unreachable: "
                                 f"{type(exc).__name__}") from None
    return {"status": "ok", "version": __version__, "storage": state.store.safe_url,
            "read_only": state.config.read_only}


@router.get("/v1/studies", tags=["studies"])
def list_studies(request: Request) -> Response:
    """All studies: the objects of ``autopeft studies -f json``."""
    from autopeft.report import render, study_rows

    return _json(render(study_rows(_state(request).store.list_studies()), "json"))


@router.get("/v1/studies/{name}", tags=["studies"])
def get_study(request: Request, name: str) -> dict[str, Any]:
    """One study (as in ``autopeft studies -f json``) with its ``budget`` and the ``search``
    this server runs for it (null when none)."""
    state = _state(request)
    _study(request, name)
    (summary,) = [s for s in state.store.list_studies() if s.name == name] or [None]
    if summary is None:  # deleted in between
        _study(request, name)
    return study_object(summary, state.searches.get(name))


@router.get("/v1/studies/{name}/front", tags=["studies"])
def get_front(request: Request, name: str,
              format: str = Query("json", pattern="^(json|csv)$",
                                  description="json, or csv as `autopeft front -f csv`")
              ) -> Response:
    """The Pareto front, best primary first: ``autopeft front -f json`` (or ``-f csv``)."""

    study = _study(request, name)
    text = _state(request).fronts.rendered(_state(request).store, study, format)
    if format == "csv":
        return Response(text, media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{name}-front.csv"'})
    return _json(text)


@router.get("/v1/studies/{name}/front.csv", tags=["studies"])
def get_front_csv(request: Request, name: str) -> Response:
    """The front as CSV (a download)."""
    return get_front(request, name, format="csv")


@router.get("/v1/studies/{name}/trials", tags=["studies"])
def get_trials(request: Request, name: str,
               status: str | None = Query(None, description="only trials with this status"),
               method: str | None = Query(None, description="only trials of this method"),
               limit: int = Query(100, ge=1, le=MAX_PAGE),
               offset: int = Query(0, ge=0, description="trials to skip"),
               after: int | None = Query(None, description="cursor: only trials numbered "
                                         "above this (give the last page's next_after)")
               ) -> Response:
    """A page of trials by number (``items``: objects of ``autopeft trials -f json``), the
    ``total`` matching the filters, and where the next page starts: ``next_offset`` for
    offset paging, ``next_after`` for cursor paging (both null on the last page)."""
    from autopeft.report import render, trial_rows
    from autopeft.store import TRIAL_STATUSES

    if status is not None and status not in TRIAL_STATUSES:
        raise _unprocessable("status", f"unknown trial status {status!r}; one of "
                                       f"{', '.join(TRIAL_STATUSES)}", "query")
    study = _study(request, name)
    total, trials = _state(request).store.trial_page(name, status=status, method=method,
                                                     limit=limit + 1, offset=offset,
                                                     after=after)
    more, trials = len(trials) > limit, trials[:limit]
    items = render(trial_rows(trials, detailed=True, primary=study.primary), "json")
    head = json.dumps({"study": name, "total": total, "offset": offset, "limit": limit,
                       "after": after,
                       "next_offset": offset + len(trials) if more else None,
                       "next_after": trials[-1].number if more else None})
    # The items are render()'s own text: no second serialisation of trial rows.
    return _json(head[:-1] + ', "items": ' + items + "}", **{"X-Total-Count": str(total)})


@router.get("/v1/studies/{name}/trials/{number}/adapter", tags=["studies"],
            response_class=FileResponse)
def get_adapter(request: Request, name: str, number: int) -> FileResponse:
    """A zip of the trial's exported adapter (``autopeft export``: the adapter files and
    a model card). Only adapters inside the study's artifacts folder are served."""
    from autopeft.export import export_trial

    store = _state(request).store
    study = _study(request, name)
    trial = store.get_trial(name, number)
    if trial is None:
        raise HTTPException(404, f"study '{name}' has no trial {number}")
    source = (trial.extra or {}).get("adapter_path")
    if source:
        _check_inside(source, (study.settings or {}).get("artifacts_dir"))
    work = Path(tempfile.mkdtemp(prefix="autopeft-adapter-"))
    try:
        out = export_trial(store, name, number, work / "adapter")
        archive = shutil.make_archive(str(work / f"{name}-trial-{number}"), "zip", root_dir=out)
    except AutopeftError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise HTTPException(404, str(exc)) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FileResponse(archive, media_type="application/zip",
                        filename=f"{name}-trial-{number}-adapter.zip",
                        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))


def _check_inside(source: str, artifacts: str | None) -> None:
    """Refuse (403) an adapter folder, or a link in it, that leads out of the artifacts."""
    if not artifacts:
        raise HTTPException(403, "the study records no artifacts folder: its adapters are "
                                 "not served (use `autopeft export` on the machine)")
    root = Path(artifacts).resolve()
    folder = Path(source).resolve()
    inside = [folder, *folder.rglob("*")] if folder.is_dir() else [folder]
    for path in inside:
        if not path.resolve().is_relative_to(root):
            raise HTTPException(403, f"adapter files outside the study's artifacts folder "
                                     f"are not served ({path.name})")


# -- searches ------------------------------------------------------------------------------

def _unprocessable(field: str | None, message: str, where: str = "body") -> HTTPException:
    loc = [where] + ([field] if field else [])
    return HTTPException(422, [{"loc": loc, "msg": message, "type": "value_error"}])


SearchBody = body_model()


@router.post("/v1/searches", tags=["searches"], status_code=202,
             dependencies=[Depends(require_token)])
def start_search(request: Request, body: SearchBody) -> dict[str, Any]:  # type: ignore[valid-type]
    """Start a search with the fields of ``autopeft search`` (``max_steps`` for
    ``--max-steps``; ``storage`` and ``ray_address`` are the server's). It runs in the
    background: follow it at ``/v1/studies/{study}`` and ``/v1/searches/{study}``."""
    from autopeft.controller.preflight import make_study_name

    state = _state(request)
    try:
        req = parse_request(body.model_dump(), make_study_name)
    except FieldError as exc:
        raise _unprocessable(exc.field, str(exc)) from None
    try:
        run = state.searches.start(req.study, req.argv)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except AutopeftError as exc:
        raise HTTPException(502, str(exc)) from None
    return {**run.to_dict(), "links": {"study": f"/v1/studies/{req.study}",
                                       "search": f"/v1/searches/{req.study}",
                                       "page": f"/studies/{req.study}"}}


@router.get("/v1/searches", tags=["searches"])
def list_searches(request: Request) -> list[dict[str, Any]]:
    """The searches this server started (since it started)."""
    return [r.to_dict() for r in _state(request).searches.all()]


@router.get("/v1/searches/{name}", tags=["searches"])
def get_search(request: Request, name: str) -> dict[str, Any]:
    """A search this server started, with the last lines it printed."""
    searches = _state(request).searches
    run = searches.get(name)
    if run is None:
        raise HTTPException(404, f"this server started no search of study '{name}'")
    return {**run.to_dict(), "log_tail": searches.log_tail(run)}


@router.delete("/v1/searches/{name}", tags=["searches"], dependencies=[Depends(require_token)])
def stop_search(request: Request, name: str) -> dict[str, Any]:
    """Stop a running search (SIGINT, or ``ray job stop``) and wait for it to end; the study
    is then ``interrupted`` and ``autopeft search --study NAME --resume`` continues it."""
    state = _state(request)
    if state.store.get_study(name) is None and state.searches.get(name) is None:
        _study(request, name)
    try:
        status = state.searches.stop(name)
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except AutopeftError as exc:
        raise HTTPException(502, str(exc)) from None
    return {"study": name, "status": status}


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One line naming every refused field (``body.trials: ...``)."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts)


def unprocessable_response(errors: list[dict[str, Any]]) -> JSONResponse:
    clean = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
    for err in clean:
        loc = list(err.get("loc") or ())
        if err.get("type") == "extra_forbidden" and loc[-1:] and loc[-1] in SERVER_OWNED:
            err["msg"] = f"{loc[-1]} is set by the server, not by a search request"
    return JSONResponse({"detail": clean, "message": validation_message(clean)}, status_code=422)
