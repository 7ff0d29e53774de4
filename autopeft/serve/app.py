"""The FastAPI app of ``autopeft serve`` and the uvicorn server that runs it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from autopeft import __version__
from autopeft.errors import AutopeftError
from autopeft.serve import api, pages
from autopeft.serve.config import ServeConfig
from autopeft.serve.runs import Searches


def create_app(config: ServeConfig, *, store: Any = None) -> FastAPI:
    """The app over ``config.storage`` (or an open ``store``).

    Raises:
        AutopeftError: the store cannot be opened.
    """
    from autopeft.paths import autopeft_home
    from autopeft.store import Store

    store = store if store is not None else Store(config.storage)
    searches = Searches(store, log_dir=config.log_dir or autopeft_home() / "serve-logs",
                        ray_address=config.ray_address, stop_timeout=config.stop_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        searches.close()  # searches go on: they are processes (or jobs) of their own

    app = FastAPI(
        title="autopeft", version=__version__, lifespan=lifespan,
        description="Studies, Pareto fronts and trials of an autopeft store; start and stop "
                    "searches. Mutating endpoints need `Authorization: Bearer <token>` when "
                    "the server has a token.",
    )
    app.state.config = config
    app.state.store = store
    app.state.searches = searches
    app.state.fronts = api.FrontCache()
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return api.unprocessable_response(list(exc.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 422 and isinstance(exc.detail, list):
            return api.unprocessable_response(exc.detail)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(AutopeftError)
    async def _user_error(request: Request, exc: AutopeftError) -> JSONResponse:
        # e.g. a study deleted between two queries: the store's one-line message, no trace
        status = 404 if str(exc).startswith("no study named") else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return app


def serve(config: ServeConfig, *, say: Callable[[str], None] | None = None) -> None:
    """Open the store, print where the server listens, and run uvicorn until Ctrl-C."""
    import uvicorn

    say = say or (lambda line: print(line, flush=True))
    app = create_app(config)
    store = app.state.store
    say(f"autopeft serve: http://{config.host}:{config.port}/ (API docs at /docs) over "
        f"{store.safe_url}; {config.mutations}"
        + (f"; searches run as Ray Jobs on {config.ray_address}" if config.ray_address else ""))
    uvicorn.run(app, host=config.host, port=config.port, log_level="info",
                timeout_graceful_shutdown=5)
