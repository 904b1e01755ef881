"""The playground's Starlette app: the page, the queries of a folder, checking as you type, and runs streamed as
server-sent events.

Every handler answers JSON: an ``LmlangError`` becomes ``{"error": ...}`` with its place in the query, anything
else a 500 with a message (and the traceback in the server's log), so no query can take the server down. Runs
share the process's loaded models, one at a time (a model's context is not shared between threads).
"""

from __future__ import annotations

import ast as pyast
import asyncio
import functools
import json
import logging
import sys
import threading
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lmlang.check import check
from lmlang.errors import LmlangError, LmlangSyntaxError, UsageError
from lmlang.models import registry
from lmlang.query import Query, compile as compile_query
from lmlang.result import Result
from lmlang.syntax import parse
from lmlang.view import results_html

log = logging.getLogger("lmlang.playground")

SUFFIXES = (".lmq", ".lmql")
MAX_SOURCE = 200_000  # characters: a query, not a file upload
Handler = Callable[[Request], Awaitable[Response]]


def error_json(err: LmlangError) -> dict[str, Any]:
    """An error as the page shows it: the message, and where it is in the query when it has a place."""
    data: dict[str, Any] = {"error": err.message, "kind": type(err).__name__}
    if err.span is not None:
        data.update(start=err.span.start, end=err.span.end, line=err.span.line, column=err.span.column)
    return data


def diagnose(source: str, name: str = "query.lmq") -> dict[str, Any]:
    """What the parser and checker say about ``source``, and the inputs it needs (names it reads that nothing
    in it defines)."""
    try:
        program = parse(source, name)
    except LmlangSyntaxError as err:
        return {"diagnostics": [error_json(err)], "inputs": []}
    try:
        problems: list[LmlangError] = list(check(program))
    except LmlangError as err:
        problems = [err]
    inputs: list[str] = []
    if not problems:
        try:
            inputs = Query(program, name).compiled(()).missing_inputs({}, set())
        except LmlangError as err:
            problems = [err]
    return {"diagnostics": [error_json(p) for p in problems], "inputs": inputs}


def input_value(text: str) -> Any:
    """An input typed in the page: a Python literal when it reads as one (``3``, ``[1, 2]``), else the text."""
    try:
        return pyast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _guarded(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except LmlangError as err:
            return JSONResponse(error_json(err), status_code=400)
        except Exception as err:  # the server stays up; the page shows the message
            log.exception("playground: %s %s failed", request.method, request.url.path)
            return JSONResponse({"error": f"internal error: {type(err).__name__}: {err}", "kind": "InternalError"},
                                status_code=500)

    return guarded


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise UsageError(None, "the request body must be JSON") from None
    if not isinstance(data, dict):
        raise UsageError(None, "the request body must be a JSON object")
    source = data.get("source", "")
    if not isinstance(source, str) or len(source) > MAX_SOURCE:
        raise UsageError(None, f"'source' must be the query's text (at most {MAX_SOURCE} characters)")
    return data


class Playground:
    """The app's state: the folder of queries offered, and the lock that lets one run use the models at a time."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else Path.cwd()
        if not self.directory.is_dir():
            raise UsageError(None, f"no such folder: {self.directory}")
        self.lock = threading.Lock()

    def queries(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir() if p.suffix in SUFFIXES and p.is_file())

    async def page(self, request: Request) -> Response:
        text = resources.files("lmlang.playground").joinpath("page.html").read_text(encoding="utf-8")
        return HTMLResponse(text)

    async def list_queries(self, request: Request) -> Response:
        return JSONResponse({"directory": str(self.directory), "queries": self.queries()})

    async def read_query(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.queries():  # only the folder's own query files, never a path
            return JSONResponse({"error": f"no query named {name!r} in {self.directory}"}, status_code=404)
        return JSONResponse({"name": name, "source": (self.directory / name).read_text(encoding="utf-8")})

    async def models(self, request: Request) -> Response:
        return JSONResponse({"models": registry.aliases(), "default": registry.DEFAULT_MODEL})

    async def check(self, request: Request) -> Response:
        data = await _body(request)
        return JSONResponse(diagnose(data["source"], str(data.get("name") or "query.lmq")))

    async def run(self, request: Request) -> Response:
        """Run a query; the answer is a stream of events: ``text`` (each piece of the prompt as it grows, and
        whether the model wrote it), ``warning``, then ``result`` (the view's HTML and the results' JSON) or
        ``error``."""
        data = await _body(request)
        query = compile_query(data["source"], str(data.get("name") or "query.lmq"))
        raw_inputs = data.get("inputs") or {}
        if not isinstance(raw_inputs, dict):
            raise UsageError(None, "'inputs' must map names to values")
        inputs = {str(k): input_value(v) if isinstance(v, str) else v for k, v in raw_inputs.items()}
        options = _decoder_options(data)
        query.program_for(inputs)  # a missing input is an error before streaming starts
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def emit(kind: str, payload: Any) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, (kind, payload))
            except RuntimeError:  # the server stopped while the run went on: nobody is listening
                pass

        def work() -> None:
            try:
                with self.lock, warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    outcome = query.run(data.get("model") or None, on_text=lambda t, g: emit("text", [t, g]),
                                        **options, **inputs)
                for warning in caught:
                    emit("warning", str(warning.message))
                results: list[Result] = outcome if isinstance(outcome, list) else [outcome]
                emit("result", {"html": results_html(results), "results": [r.to_json() for r in results]})
            except LmlangError as err:
                emit("error", error_json(err))
            except Exception as err:
                log.exception("playground: the run failed")
                emit("error", {"error": f"internal error: {type(err).__name__}: {err}", "kind": "InternalError"})
            finally:
                emit("done", None)

        threading.Thread(target=work, name="lmlang-playground-run", daemon=True).start()

        async def stream() -> AsyncIterator[str]:
            while True:
                kind, payload = await events.get()
                if kind == "done":
                    return
                yield f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _decoder_options(data: dict[str, Any]) -> dict[str, Any]:
    """The run's decoder override from the page: a decoder name and its ``n`` and ``seed``."""
    decoder = data.get("decoder") or None
    args: dict[str, Any] = {}
    for key in ("n", "seed"):
        value = data.get(key)
        if value in (None, ""):
            continue
        try:
            args[key] = int(value)
        except (TypeError, ValueError):
            raise UsageError(None, f"{key} must be a whole number, not {value!r}") from None
    if decoder in (None, "argmax"):
        args.pop("n", None)  # argmax gives one result
    return {"decoder": decoder, "decoder_args": args}


def create_app(directory: str | Path | None = None) -> Starlette:
    playground = Playground(directory)
    routes = [
        Route("/", _guarded(playground.page)),
        Route("/api/queries", _guarded(playground.list_queries)),
        Route("/api/queries/{name}", _guarded(playground.read_query)),
        Route("/api/models", _guarded(playground.models)),
        Route("/api/check", _guarded(playground.check), methods=["POST"]),
        Route("/api/run", _guarded(playground.run), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.playground = playground
    return app


def serve(directory: str | Path | None, host: str, port: int) -> int:
    import uvicorn

    app = create_app(directory)
    print(f"lmlang playground on http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
