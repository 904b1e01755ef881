"""``lmlang serve``: queries over HTTP (Starlette on uvicorn).

``POST /run`` takes ``{"query": SOURCE, "inputs": {...}}`` or ``{"file": NAME, ...}`` (a ``.lmq``/``.lmql`` file
of the server's query directory), with optional ``"model"``, ``"decoder"``, ``"seed"`` and ``"stream"``, and
answers with the result as ``lmlang run --json`` prints it, or, streamed, as server-sent events: ``text`` events
while the prompt and the generated text grow, then one ``result`` (or ``error``) event. ``GET /health`` says the
server is up. A request the server cannot run gets a 4xx with ``{"error": MESSAGE}``, the message the CLI prints.
"""

from __future__ import annotations

from lmlang.serve.app import DEFAULT_HOST, DEFAULT_PORT, create_app, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app", "serve"]
