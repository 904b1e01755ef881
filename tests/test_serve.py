"""lmlang serve: a real server on a free port, real HTTP clients, concurrent good and malformed requests."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Iterator

import httpx
import pytest
import uvicorn

import lmlang
from lmlang.serve import create_app

SUM = '"{a} plus {b} is[N]" where INT(N) and len(TOKENS(N)) < 3'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    queries = tmp_path_factory.mktemp("queries")
    (queries / "sum.lmq").write_text(SUM + "\n", encoding="utf-8")
    (queries.parent / "secret.lmq").write_text('"secret"\n', encoding="utf-8")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(queries, "smollm2", max_body=64 * 1024), log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(30)
    sock.close()


BAD = [
    ({"query": '"unterminated'}, 400, "error"),
    ({"query": '"Q: [A]" where FROB(A)'}, 400, "FROB"),
    ({"query": SUM, "inputs": {"a": 1, "b": 2}, "model": "no-such-model"}, 400, "unknown model"),
    ({"query": SUM, "inputs": {"a": 1, "b": 2}, "model": "/etc/passwd"}, 400, "unknown model"),
    ({"query": SUM, "inputs": {"a": 1}}, 400, "needs the input b"),
    ({"file": "nope.lmq", "inputs": {}}, 404, "no query file"),
    ({"file": "../secret.lmq"}, 400, "not a file name"),
    ({"file": "/etc/passwd"}, 400, "not a file name"),
    ({"query": SUM, "inputs": [1, 2]}, 400, '"inputs" is an object'),
    ({"query": 42}, 400, '"query" is text'),
    ({"query": SUM, "file": "sum.lmq"}, 400, "either"),
    ({"inputs": {}}, 400, "either"),
    ({"query": SUM, "inputs": {"a": 1, "b": 2}, "stream": "yes"}, 400, '"stream" is true or false'),
    ({"query": SUM, "bogus": 1}, 400, "unknown field"),
    ({"query": SUM, "inputs": {"a": 1, "b": 2}, "decoder": "frobnicate"}, 400, "frobnicate"),
    ({"query": SUM, "inputs": {"a": 1, "b": 2}, "decoder": "frobnicate", "stream": True}, 400, "frobnicate"),
    ({"query": '"N:[X]" where INT(X) and len(TOKENS(X)) < 3\nreturn 1 / 0'}, 422, "ZeroDivisionError"),
    ({"query": '"' + "word " * 5000 + '[X]" where len(TOKENS(X)) < 2'}, 422, "context"),
    ({"query": "x" * 70000}, 413, "larger than"),
    (b"{not json", 400, "not JSON"),
    (b"", 400, "not JSON"),
    ([1, 2, 3], 400, "JSON object"),
]


@pytest.mark.model
@pytest.mark.slow
def test_fifty_concurrent_requests_good_and_bad(smollm2, server: str) -> None:
    query = lmlang.compile(SUM)
    pairs = [(a, b) for a in (1, 2, 3, 7, 12) for b in (2, 5)]
    expected = {pair: query.run("smollm2", a=pair[0], b=pair[1]).to_json() for pair in pairs}
    good = [{"query": SUM, "inputs": {"a": a, "b": b}} for a, b in pairs]
    good += [{"file": "sum.lmq", "inputs": {"a": a, "b": b}, "model": "smollm2"} for a, b in pairs[:9]]
    requests = [("good", body) for body in good] + [("bad", case[0]) for case in BAD]
    assert len(requests) == 41
    stream_body = {"query": SUM, "inputs": {"a": 3, "b": 5}, "stream": True}

    async def send(client: httpx.AsyncClient, body: object) -> httpx.Response:
        if isinstance(body, bytes):
            return await client.post("/run", content=body, headers={"content-type": "application/json"})
        return await client.post("/run", json=body)

    async def main() -> tuple[list[httpx.Response], list[str], httpx.Response]:
        async with httpx.AsyncClient(base_url=server, timeout=600) as client:
            async def stream() -> list[str]:
                async with client.stream("POST", "/run", json=stream_body) as response:
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("text/event-stream")
                    return [line async for line in response.aiter_lines()]

            streams = [stream() for _ in range(9)]
            gathered = await asyncio.gather(*(send(client, body) for _, body in requests), *streams)
            health = await client.get("/health")
        return list(gathered[: len(requests)]), gathered[len(requests):], health

    responses, streams, health = asyncio.run(main())
    assert len(responses) + len(streams) == 50
    for (kind, body), response in zip(requests, responses):
        data = response.json()
        if kind == "good":
            assert response.status_code == 200, data
            pair = (body["inputs"]["a"], body["inputs"]["b"])  # type: ignore[index]
            want = expected[pair]
            assert data["variables"] == want["variables"] and data["prompt"] == want["prompt"]
        else:
            case = next(c for c in BAD if c[0] is body)
            assert response.status_code == case[1], (body if not isinstance(body, dict) else list(body), data)
            assert set(data) == {"error"} and case[2] in data["error"], data
            assert "Traceback" not in data["error"]
    for lines in streams:
        events = [(lines[i], json.loads(lines[i + 1][len("data: "):])) for i in range(0, len(lines), 3)
                  if lines[i].startswith("event:")]
        assert events[-1][0] == "event: result"
        text = "".join(data["text"] for kind, data in events if kind == "event: text")
        assert text == events[-1][1]["prompt"] == expected[(3, 5)]["prompt"]
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_the_server_binds_to_this_machine_by_default() -> None:
    from lmlang.serve import DEFAULT_HOST

    assert DEFAULT_HOST == "127.0.0.1"
    from lmlang.cli import _parser

    assert _parser().parse_args(["serve"]).host == "127.0.0.1"
