"""The HTTP face: a Starlette app over ``Query.run``; runs go to worker threads, so requests are answered
concurrently (runs on one model take turns, see lmlang.concurrency)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lmlang.errors import InputError, LmlangError, LmlangSyntaxError, CheckError, UsageError
from lmlang.mapping import message_of, query_inputs, result_json
from lmlang.models import registry
from lmlang.query import Query, compile

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_BODY = 1 << 20  # bytes of a request: a query and its inputs, not a corpus
QUERIES_KEPT = 256  # compiled queries kept by source text, least recently used dropped
_FIELDS = {"query", "file", "inputs", "model", "decoder", "seed", "stream"}


class _Refused(Exception):
    """A request the server answers with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Queries:
    """Compiled queries by source text (bounded), so that a client sending the same query does not recompile."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Query] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, source: str, name: str) -> Query:
        key = (source, name)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        query = compile(source, name)
        with self._lock:
            self._entries[key] = query
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return query


def create_app(query_dir: str | Path | None = None, model: str | None = None, *, max_body: int = MAX_BODY) -> Starlette:
    """The server's ASGI app: ``model`` (if given) runs every request that names none; ``query_dir`` holds the
    files requests may name."""
    directory = Path(query_dir).resolve() if query_dir is not None else None
    queries = _Queries(QUERIES_KEPT)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def run(request: Request) -> Response:
        try:
            spec = _spec(await _body(request, max_body))
            query = _query(spec, queries, directory)
            # The server's own model may be a file; a request's (or its query's 'from') may not.
            _check_model(spec.get("model") or (query.model_name if model is None else None))
            chosen = spec.get("model") or model
            inputs = query_inputs(query, spec.get("inputs") or {})
            query.program_for(inputs)  # a missing input is the request's fault, before anything runs
            options: dict[str, Any] = {"decoder": spec.get("decoder")}
            if spec.get("seed") is not None:
                options["decoder_args"] = {"seed": spec["seed"]}
            if spec.get("stream"):
                return await _stream(query, chosen, options, inputs)
            try:
                outcome = await asyncio.to_thread(query.run, chosen, **options, **inputs)
            except LmlangError as err:
                raise _Refused(_status(err), message_of(err)) from None
            return JSONResponse(_json(outcome))
        except _Refused as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status)
        except (LmlangSyntaxError, CheckError, UsageError, InputError) as err:
            return JSONResponse({"error": message_of(err)}, status_code=400)
        except LmlangError as err:
            return JSONResponse({"error": message_of(err)}, status_code=422)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as err:  # a bug of lmlang's: said in one line, and the server goes on
            return JSONResponse({"error": message_of(err)}, status_code=500)

    return Starlette(routes=[Route("/health", health, methods=["GET"]), Route("/run", run, methods=["POST"])])


async def _body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"the request is larger than {limit} bytes: send a shorter query or inputs")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise _Refused(413, f"the request is larger than {limit} bytes: send a shorter query or inputs")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Refused(400, 'the body is not JSON: send {"query": "...", "inputs": {...}}') from None


def _spec(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Refused(400, 'the body is a JSON object, as in {"query": "...", "inputs": {...}}')
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _Refused(400, f"unknown field {unknown[0]!r}: a request has {', '.join(sorted(_FIELDS))}")
    if ("query" in body) == ("file" in body):
        raise _Refused(400, 'a request has either "query" (the query\'s text) or "file" (a query file\'s name)')
    for name, kind, what in (("query", str, "text"), ("file", str, "text"), ("inputs", dict, "an object"),
                             ("model", str, "text"), ("decoder", str, "text"), ("seed", int, "a number"),
                             ("stream", bool, "true or false")):
        value = body.get(name)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise _Refused(400, f'"{name}" is {what}, not {json.dumps(value)[:40]}')
    return body


def _query(spec: dict[str, Any], queries: _Queries, directory: Path | None) -> Query:
    if "query" in spec:
        return queries.get(spec["query"], "<request>")
    name = spec["file"]
    if directory is None:
        raise _Refused(400, 'this server has no query directory: send the query\'s text as "query"')
    if Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name:
        raise _Refused(400, f"{name!r} is not a file name of the query directory")
    path = (directory / name).resolve()
    if not path.is_relative_to(directory) or path.suffix not in (".lmq", ".lmql") or not path.is_file():
        raise _Refused(404, f"no query file {name!r} in the server's query directory")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise _Refused(404, f"cannot read the query file {name!r}: {err}") from None
    return queries.get(source, name)


def _check_model(name: str | None) -> None:
    """Requests run registered models only: a path would let a client make the server read any file."""
    if name is not None and not registry.is_alias(name):
        known = ", ".join(sorted(registry.aliases()))
        raise _Refused(400, f"unknown model {name!r}: this server runs {known}")


def _json(outcome: Any) -> Any:
    data = result_json(outcome)
    return data["results"] if isinstance(outcome, list) else data


def _status(err: LmlangError) -> int:
    """400 when the request is at fault (its query, its options, its inputs); 422 when a well-formed query
    failed while running (its Python raised, a constraint could not be met, the prompt outgrew the context)."""
    return 400 if isinstance(err, (LmlangSyntaxError, CheckError, UsageError, InputError)) else 422


async def _stream(query: Query, model: str | None, options: dict[str, Any], inputs: dict[str, Any]) -> Response:
    """The run as server-sent events: ``text`` while it runs, then ``result`` or ``error``. A run that fails
    before its first text is answered as a non-streamed one would be, with its 4xx."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_text(text: str, generated: bool) -> None:
        loop.call_soon_threadsafe(pieces.put_nowait, ("text", {"text": text, "generated": generated}))

    def work() -> None:
        try:
            event: tuple[str, Any] = ("result", _json(query.run(model, on_text=on_text, **options, **inputs)))
        except Exception as err:
            event = ("error", err)
        loop.call_soon_threadsafe(pieces.put_nowait, event)

    worker = loop.run_in_executor(None, work)
    first = await pieces.get()
    if first[0] == "error":
        await worker
        err = first[1]
        status = _status(err) if isinstance(err, LmlangError) else 500
        return JSONResponse({"error": message_of(err)}, status_code=status)

    async def events() -> AsyncIterator[str]:
        kind, data = first
        while True:
            if kind == "error":  # the response has begun: the error is the stream's last event
                data = {"error": message_of(data)}
            yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            if kind != "text":
                break
            kind, data = await pieces.get()
        await worker

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, model: str | None = None,
          query_dir: str | Path | None = None) -> None:
    """Serve until interrupted; ``model`` is loaded first, so that the first request does not wait for it."""
    import uvicorn

    if query_dir is not None and not Path(query_dir).is_dir():
        raise UsageError(None, f"no such directory: {query_dir}")
    if model is not None:
        _check_model_or_usage(model)
        from lmlang.models import llama

        llama.load(model)
    print(f"lmlang: serving on http://{host}:{port} (POST /run, GET /health); Ctrl-C stops", file=sys.stderr)
    uvicorn.run(create_app(query_dir, model), host=host, port=port, log_level="warning")


def _check_model_or_usage(name: str) -> None:
    try:
        registry.resolve(name)
    except LmlangError as err:
        raise UsageError(None, err.message) from None
