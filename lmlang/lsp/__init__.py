"""The lmlang language server (``lmlang lsp``), spoken over stdio to editors."""

from __future__ import annotations


def serve() -> None:
    """Run the language server on stdin/stdout until the client ends the session."""
    # Imported here so that the command line starts without loading pygls for every other command.
    from lmlang.lsp.server import server

    server.start_io()
