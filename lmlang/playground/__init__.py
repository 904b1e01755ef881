"""The playground: a local web page to edit, check and run queries, showing results as :mod:`lmlang.view` draws them.

``lmlang playground [--port P] [QUERY_DIR]`` serves it on 127.0.0.1. The app (:func:`create_app`) is a Starlette
application, so that it can later be mounted beside ``lmlang serve``'s. Starlette and uvicorn come with the
``playground`` extra (``pip install 'lmlang[playground]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmlang.errors import UsageError

__all__ = ["create_app", "serve"]


def _app_module() -> Any:
    try:
        from lmlang.playground import app
    except ModuleNotFoundError as err:
        if err.name in ("starlette", "uvicorn"):
            raise UsageError(None, f"the playground needs {err.name}: pip install 'lmlang[playground]'") from None
        raise
    return app


def create_app(directory: str | Path | None = None) -> Any:
    """The playground's ASGI app, offering the queries of ``directory`` (default: the current folder)."""
    return _app_module().create_app(directory)


def serve(directory: str | Path | None = None, host: str = "127.0.0.1", port: int = 8765) -> int:
    """Serve the playground until interrupted; the CLI's exit code."""
    return int(_app_module().serve(directory, host, port))
