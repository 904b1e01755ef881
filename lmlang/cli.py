"""The terminal face of lmlang: a thin shell over the public API.

Exit codes: 0 ok, 1 runtime or model error, 2 usage or syntax error, 130 on Ctrl-C. Results go to stdout
(``--json`` for machines); progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import ast as pyast
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Sequence

from lmlang import __version__
from lmlang.check import check
from lmlang.errors import CheckError, LmlangError, LmlangSyntaxError, UsageError
from lmlang.models.names import INFORMATION, model_name_problem
from lmlang.multimodel.trace import summary as trace_summary
from lmlang.query import Query, compile_file
from lmlang.result import Result
from lmlang.syntax import parse

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well, but it must not print usage noise
        raise UsageError(None, message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmlang", description="Run lmlang queries on local language models.")
    parser.add_argument("--version", action="version", version=f"lmlang {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = commands.add_parser("run", help="run a query file")
    run.add_argument("file", help="a .lmq or .lmql file")
    run.add_argument("--model", "-m", help="model alias (smollm2, gemma3-270m, qwen2.5-coder-1.5b) or .gguf path; "
                                           "overrides 'from'")
    run.add_argument("--input", "-i", action="append", default=[], metavar="NAME=VALUE",
                     help="an input of the query; VALUE is read as a Python literal when it is one, else as text")
    run.add_argument("--json", action="store_true", help="print the result as JSON, nothing else on stdout")
    run.add_argument("--seed", type=int, help="seed of the sampling decoders")
    run.add_argument("--decoder", help="override the decoder clause, e.g. argmax or sample")
    run.add_argument("--html", metavar="OUT.html", help="also write the result as a self-contained HTML page")
    run.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    mapper = commands.add_parser("map", help="run a query on each row of a dataset (JSON Lines or CSV)")
    mapper.add_argument("file", help="a .lmq or .lmql file")
    mapper.add_argument("--data", required=True, help="rows.jsonl or rows.csv: each row's fields are the inputs")
    mapper.add_argument("--out", required=True, help="results.jsonl or results.csv; an existing one is resumed")
    mapper.add_argument("--concurrency", "-c", type=int, default=1,
                        help="rows run at once (threads; with --ray, on each node)")
    mapper.add_argument("--ray", nargs="?", const=True, metavar="ADDRESS",
                        help="run on a Ray cluster: the one at ADDRESS (head:6379), else a new local one "
                             "(needs pip install 'lmlang[ray]')")
    mapper.add_argument("--model", "-m", help="model alias or .gguf path; overrides 'from'")
    mapper.add_argument("--deterministic", action="store_true",
                        help="run the rows one at a time on each model, each exactly as alone (no shared batches)")
    mapper.add_argument("--seed", type=int, help="seed of the sampling decoders")
    mapper.add_argument("--decoder", help="override the decoder clause, e.g. argmax or sample")
    mapper.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    server = commands.add_parser("serve", help="answer queries over HTTP (POST /run, GET /health)")
    server.add_argument("query_dir", nargs="?", help="a directory of .lmq files that requests may name")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine)")
    server.add_argument("--port", "-p", type=int, default=8000, help="port to listen on (default 8000)")
    server.add_argument("--model", "-m", help="model of the requests that name none; overrides 'from'")
    server.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    chk = commands.add_parser("check", help="parse and check query files without a model")
    chk.add_argument("files", nargs="+")
    chk.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    commands.add_parser("lsp", help="start the language server on stdio (for editors)")
    play = commands.add_parser("playground", help="edit and run queries in the browser (a local web page)")
    play.add_argument("dir", nargs="?", help="a folder of .lmq/.lmql files to open (default: the examples)")
    play.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    play.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    play.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    commands.add_parser("calibrate", help="fit a cascade's thresholds on labeled data (see lmlang calibrate -h)",
                        add_help=False)
    return parser


def _warning_line(message: Warning | str, category: type[Warning], *rest: Any, **named: Any) -> str:
    return f"warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LMLANG_DEBUG") == "1"
    warnings.formatwarning = _warning_line
    try:
        if argv[:1] == ["calibrate"]:
            from lmlang.multimodel.calibrate import calibrate_main

            return calibrate_main(argv[1:])
        args = _parser().parse_args(argv)
        if args.command == "run":
            return _run(args)
        if args.command == "map":
            return _map(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "check":
            return _check(args.files)
        if args.command == "playground":
            from lmlang.playground import serve as serve_playground

            return serve_playground(args.dir, host=args.host, port=args.port)
        if args.command == "lsp":
            from lmlang.lsp import serve

            serve()
            return EXIT_OK
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except LmlangError as err:
        if debug:
            traceback.print_exc()
        print(err.render(), file=sys.stderr)
        return EXIT_USAGE if isinstance(err, (LmlangSyntaxError, CheckError, UsageError)) else EXIT_RUNTIME
    except Exception:
        if debug:
            raise
        print("error: lmlang failed unexpectedly; run again with --debug and report the traceback",
              file=sys.stderr)
        traceback.print_exc(limit=-1, file=sys.stderr)
        return EXIT_RUNTIME


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(None, f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(None, f"cannot read {path}: {err}") from None


def _inputs(pairs: list[str]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(None, f"--input takes NAME=VALUE, as in --input question='What is 2+2?' (got {pair!r})")
        try:
            inputs[name] = pyast.literal_eval(value)
        except (ValueError, SyntaxError):
            inputs[name] = value
    return inputs


def _run(args: argparse.Namespace) -> int:
    _read(args.file)
    query: Query = compile_file(args.file)
    stream = not args.json

    streamed = [""]  # the last text written, so that an error starts on a line of its own

    def on_text(text: str, generated: bool) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()
        streamed[0] = text or streamed[0]

    decoder_args = {"seed": args.seed} if args.seed is not None else {}
    try:
        outcome = query.run(args.model, decoder=args.decoder, decoder_args=decoder_args,
                            on_text=on_text if stream else None, **_inputs(args.input))
    except BaseException:
        if streamed[0] and not streamed[0].endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
        raise
    results = outcome if isinstance(outcome, list) else [outcome]
    if args.html:
        from lmlang.view import document_html

        try:
            Path(args.html).write_text(document_html(results, Path(args.file).name), encoding="utf-8")
        except OSError as err:
            raise UsageError(None, f"cannot write {args.html}: {err}") from None
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        data = [r.to_json() for r in results]
        print(json.dumps(data if isinstance(outcome, list) else data[0], ensure_ascii=False, indent=2))
    else:
        _summarize(results)
    return EXIT_OK


def _map(args: argparse.Namespace) -> int:
    from lmlang.mapping import map_file

    _read(args.file)
    query = compile_file(args.file)
    if args.concurrency < 1:
        raise UsageError(None, f"--concurrency takes a number of rows at once, at least 1 (got {args.concurrency})")
    failed = map_file(query, args.data, args.out, args.model, concurrency=args.concurrency, decoder=args.decoder,
                      decoder_args={"seed": args.seed} if args.seed is not None else {}, ray=args.ray,
                      deterministic=args.deterministic)
    if failed:
        print(f"error: {failed} row{'s' if failed > 1 else ''} failed: see the \"error\" of their lines in {args.out}",
              file=sys.stderr)
    return EXIT_RUNTIME if failed else EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    try:
        from lmlang.serve import serve
    except ImportError as err:
        raise UsageError(None, f"lmlang serve needs {err.name}: pip install 'lmlang[serve]'") from None
    serve(args.host, args.port, args.model, args.query_dir)
    return EXIT_OK


def _summarize(results: list[Result]) -> None:
    """After the streamed first result: the other results, the variables and a line of stats."""
    sys.stdout.write("\n")
    for i, result in enumerate(results):
        if len(results) > 1:
            print(f"--- result {i + 1} of {len(results)}")
            if i > 0:
                print(result.prompt)
        for name, value in result.variables.items():
            print(f"{name} = {value!r}")
        if result.returned:
            print(f"return {result.return_value!r}")
    for result in results:
        if result.trace:
            print(trace_summary(result.trace), file=sys.stderr)
    print(f"[{results[0].model}: {sum(r.stats.prefill_tokens for r in results)} prompt tokens, "
          f"{sum(r.stats.generated_tokens for r in results)} generated, {sum(r.stats.seconds for r in results):.2f}s]",
          file=sys.stderr)


def _check(files: list[str]) -> int:
    failed = False
    for path in files:
        try:
            problems: list[LmlangError] = list(check(parse(_read(path), path), models=model_name_problem))
        except LmlangSyntaxError as err:
            problems = [err]
        for problem in problems:
            print(problem.render(code=True), file=sys.stderr)
        failed = failed or any(p.code not in INFORMATION for p in problems)
        if not problems:
            print(f"{path}: ok")
    return EXIT_USAGE if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
