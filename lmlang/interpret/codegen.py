"""Translation of a program's AST into a Python generator function.

Why Python generators: the statements and expressions of a query *are* Python, so the surest way to give them
Python's semantics is to let Python run them. Every query string becomes a run of ``yield`` statements (text,
role tags, holes), so a running query is a coroutine that stops at each hole and resumes with the hole's value.
A generator cannot be copied, so a run branches by *replay*: a fresh generator is fed the recorded hole values
up to the branch point (``interpret.execution``). Code between holes is cheap next to decoding, so replay costs
little, and it keeps every branch an ordinary Python frame.

The generated code calls helpers bound in its namespace (``__lm_text``, ``__lm_role``, ``__lm_hole``,
``__lm_nested``, ``__lm_block``, ``__lm_str``), ``__lm_query`` for nested query definitions and
``__lm_no_return``, what a query that returns no value returns;
``interpret.execution`` provides them, and ``__lm_await``, which each ``await`` of the query's own code becomes
when the code is compiled (the generator is not a coroutine). A hole's decorators, ``[@fn X]``, are evaluated
where the hole stands and handed over with it: the decoder runs them.
"""

from __future__ import annotations

import ast as pyast
import dataclasses
import io
import symtable
import tokenize
from dataclasses import dataclass, field

from lmlang.source import Span
from lmlang.syntax import ast

MAIN = "__lmlang_main__"
FILENAME = "<lmlang-query>"


@dataclass(frozen=True)
class HoleSite:
    """A hole as the program text defines it, with the constraints and scoring that apply to it."""

    index: int
    hole: ast.Hole
    where: tuple[ast.Expr, ...]
    distribution: ast.Distribution | None
    depth: int  # 0 for the main query, 1 and more inside nested queries
    holes: frozenset[str]  # every hole of the query the site stands in: names a where clause may defer to


@dataclass
class Generated:
    """The Python source of a program, its hole sites, and where each generated line came from."""

    source: str
    sites: list[HoleSite]
    line_spans: dict[int, Span]
    blocks: list[ast.Stmt]  # multi-model statements, run by the runtime that knows several models
    params: tuple[str, ...]
    # Names the prelude (the Python before a standalone query's decoder clause) binds: as in LMQL, globals of
    # the query, so each run needs globals of its own.
    prelude_globals: frozenset[str] = frozenset()


@dataclass
class _Emitter:
    lines: list[str] = field(default_factory=list)
    line_spans: dict[int, Span] = field(default_factory=dict)
    sites: list[HoleSite] = field(default_factory=list)
    blocks: list[ast.Stmt] = field(default_factory=list)
    counter: int = 0

    def emit(self, indent: int, code: str, span: Span | None = None) -> None:
        for i, line in enumerate(code.split("\n")):
            # Only the first line is re-indented: the rest are continuation lines (inside brackets or a
            # triple-quoted string) whose text must stay exactly as written.
            self.lines.append(("    " * indent + line) if i == 0 else line)
            if span is not None:
                self.line_spans[len(self.lines)] = span

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"__lmlang_{stem}_{self.counter}"


def generate(program: ast.Program, params: tuple[str, ...]) -> Generated:
    """The Python source of ``program`` as a generator function ``__lmlang_main__(*params)``."""
    out = _Emitter()
    out.emit(0, f"def {MAIN}({', '.join(params)}):")
    shared = prelude_globals(program, params)
    if shared:
        out.emit(1, f"global {', '.join(sorted(shared))}")
    _program_body(out, program, depth=0, shared=shared)
    return Generated("\n".join(out.lines) + "\n", out.sites, out.line_spans, out.blocks, params, shared)


def _program_body(out: _Emitter, program: ast.Program, depth: int, shared: frozenset[str] = frozenset()) -> None:
    _block(out, program.body, 1, dataclasses.replace(_Context.of(program, depth), shared=shared))
    # Makes the function a generator even when the program has no query string.
    out.emit(1, "if False: yield None")
    out.emit(1, "return __lm_no_return")


@dataclass(frozen=True)
class _Context:
    program: ast.Program
    depth: int
    last_hole: ast.Hole | None
    hole_names: frozenset[str]
    in_function: bool = False
    block: str | None = None  # the body function of the multi-model block the code stands in
    shared: frozenset[str] = frozenset()  # the prelude's globals

    @classmethod
    def of(cls, program: ast.Program, depth: int) -> _Context:
        holes = ast.holes(program)
        return cls(program, depth, holes[-1] if holes else None, frozenset(h.name for h in holes))


def _block(out: _Emitter, stmts: tuple[ast.Stmt, ...], indent: int, ctx: _Context) -> None:
    if not stmts:
        out.emit(indent, "pass")
    for stmt in stmts:
        _statement(out, stmt, indent, ctx)


def _expr(expr: ast.Expr) -> str:
    return f"({expr.source})"


def _statement(out: _Emitter, stmt: ast.Stmt, indent: int, ctx: _Context) -> None:
    if isinstance(stmt, ast.QueryStmt):
        if ctx.in_function:
            out.emit(indent, "pass", stmt.span)  # a string statement in a plain function is a docstring
        else:
            _query_string(out, stmt, indent, ctx)
    elif isinstance(stmt, ast.PyStmt):
        out.emit(0, _reindent(stmt.source, stmt.span.column - 1, indent), stmt.span)
    elif isinstance(stmt, ast.Return):
        # A query's bare `return` (and its end) returns no value, which is not `return None`: as in LMQL, the
        # caller then gets the whole result, and a nested query is a macro.
        bare = "return" if ctx.in_function or ctx.block is not None else "return __lm_no_return"
        out.emit(indent, bare if stmt.value is None else f"return {_expr(stmt.value)}", stmt.span)
    elif isinstance(stmt, ast.If):
        for i, (test, body) in enumerate(stmt.branches):
            out.emit(indent, f"{'if' if i == 0 else 'elif'} {_expr(test)}:", test.span)
            _block(out, body, indent + 1, ctx)
        _orelse(out, stmt, indent, ctx)
    elif isinstance(stmt, ast.For):
        out.emit(indent, f"for {stmt.target.source} in {_expr(stmt.iter)}:", stmt.iter.span)
        _block(out, stmt.body, indent + 1, ctx)
        _orelse(out, stmt, indent, ctx)
    elif isinstance(stmt, ast.While):
        out.emit(indent, f"while {_expr(stmt.test)}:", stmt.test.span)
        _block(out, stmt.body, indent + 1, ctx)
        _orelse(out, stmt, indent, ctx)
    elif isinstance(stmt, ast.FunctionDef):
        _function(out, stmt, indent, ctx)
    elif isinstance(stmt, ast.QueryDef):
        _query_def(out, stmt, indent, ctx)
    elif isinstance(stmt, (ast.Cascade, ast.Route, ast.Ensemble)):
        _multi_model_block(out, stmt, indent, ctx)
    else:  # pragma: no cover - the AST is closed
        raise TypeError(f"unknown statement {stmt!r}")


def _orelse(out: _Emitter, stmt: ast.If | ast.For | ast.While, indent: int, ctx: _Context) -> None:
    if stmt.orelse:
        out.emit(indent, "else:", stmt.span)
        _block(out, stmt.orelse, indent + 1, ctx)


def _reindent(source: str, column: int, indent: int) -> str:
    """A Python statement written at ``column``, moved to ``indent`` levels: every line shifts by the same amount
    (a ``class`` or ``try`` block keeps its shape), except lines inside a multi-line string, whose text is data."""
    text = " " * column + source
    delta = 4 * indent - column
    inside_string: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.start[0] != token.end[0] and token.type in _STRING_TOKENS:
                inside_string.update(range(token.start[0], token.end[0]))  # 0-based indices of the later lines
    except (tokenize.TokenError, SyntaxError):
        pass
    lines = []
    for i, line in enumerate(text.split("\n")):
        if i in inside_string:
            lines.append(line)
        elif delta >= 0:
            lines.append(" " * delta + line)
        else:
            lines.append(line[min(-delta, len(line) - len(line.lstrip(" "))):])
    return "\n".join(lines)


_STRING_TOKENS = {tokenize.STRING} | {getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def _function(out: _Emitter, stmt: ast.FunctionDef, indent: int, ctx: _Context) -> None:
    for decorator in stmt.decorators:
        out.emit(indent, f"@{decorator.source}", decorator.span)
    returns = f" -> {stmt.returns.source}" if stmt.returns else ""
    prefix = "async def" if stmt.is_async else "def"
    out.emit(indent, f"{prefix} {stmt.name}({stmt.params}){returns}:", stmt.span)
    inner = dataclasses.replace(ctx, in_function=True, block=None)
    _block(out, stmt.body, indent + 1, inner)


def _multi_model_block(out: _Emitter, stmt: ast.MultiModelBlock, indent: int, ctx: _Context) -> None:
    """The block's body becomes a generator function that returns the variables it binds, so the runtime can run
    it (again) on another model; the names are then bound in the enclosing scope from the accepted run."""
    bodies = [body for _, body in stmt.arms] if isinstance(stmt, ast.Route) else [stmt.body]
    names = sorted({name for body in bodies for name in bound_names(body)})
    function = out.fresh("block")
    index = len(out.blocks)  # taken before the body: blocks nested in it are appended after this one
    out.blocks.append(stmt)
    out.emit(indent, f"def {function}(__lm_arm=0):", stmt.span)
    inner = dataclasses.replace(ctx, block=function)
    for arm, body in enumerate(bodies):
        out.emit(indent + 1, f"if __lm_arm == {arm}:", stmt.span)
        _block(out, body, indent + 2, inner)
    out.emit(indent + 1, "if False: yield None")
    out.emit(indent + 1, "return {k: v for k, v in locals().items() if not k.startswith('__lm')}")
    out.emit(indent, f"{function}.scope = {_visible(ctx)}", stmt.span)
    values = out.fresh("values")
    out.emit(indent, f"{values} = yield __lm_block({index}, {function})", stmt.span)
    for name in names:
        out.emit(indent, f"if {name!r} in {values}: {name} = {values}[{name!r}]", stmt.span)


def _visible(ctx: _Context) -> str:
    """An expression for the variables visible at a point of the generated code. A block's body is a function of
    its own, whose locals() lack the enclosing query's variables unless its Python code happens to use them: its
    ``scope`` attribute holds them (the multi-model runtime evaluates the block's header and condition in it, and
    the constraints of its holes may name them)."""
    if ctx.block is not None:
        return f"{{**{ctx.block}.scope, **locals()}}"
    if ctx.shared:
        names = ", ".join(repr(n) for n in sorted(ctx.shared))
        return f"{{**{{__lm_n: globals()[__lm_n] for __lm_n in ({names},) if __lm_n in globals()}}, **locals()}}"
    return "locals()"


def prelude_globals(program: ast.Program, params: tuple[str, ...]) -> frozenset[str]:
    """The names the statements before a standalone query's decoder clause bind (assignments, functions,
    classes, imports), but the inputs: LMQL runs that prelude as the query's module, so they are globals."""
    if program.decoder is None:
        return frozenset()
    prelude = tuple(s for s in program.body if s.span.end <= program.decoder.span.start)
    if not prelude:
        return frozenset()
    scratch = _Emitter()
    _block(scratch, prelude, 1, _Context.of(program, 0))
    try:
        table = symtable.symtable("def __lm_prelude():\n" + "\n".join(scratch.lines) + "\n", FILENAME, "exec")
    except SyntaxError:
        return frozenset()  # compiling the whole program reports it, with its place
    scope = table.get_children()[0]
    bound = {s.get_name() for s in scope.get_symbols() if s.is_assigned() or s.is_imported()}
    return frozenset(n for n in bound if not n.startswith("__lm") and n not in params)


def bound_names(stmts: tuple[ast.Stmt, ...]) -> set[str]:
    """Variables a block binds: its holes and the targets of its assignments and loops."""
    names: set[str] = set()
    for stmt in ast.walk(stmts):
        if isinstance(stmt, ast.QueryStmt):
            names.update(h.name for h in stmt.string.holes)
        elif isinstance(stmt, ast.PyStmt):
            names.update(_stored_names(stmt.source))
        elif isinstance(stmt, ast.For):
            names.update(_stored_names(f"{stmt.target.source} = None"))
    return names


def _stored_names(source: str) -> set[str]:
    try:
        tree = pyast.parse(source.strip())
    except SyntaxError:
        return set()
    return {n.id for n in pyast.walk(tree) if isinstance(n, pyast.Name) and isinstance(n.ctx, pyast.Store)}


def _query_def(out: _Emitter, stmt: ast.QueryDef, indent: int, ctx: _Context) -> None:
    name = out.fresh(f"query_{stmt.name}")
    out.emit(indent, f"def {name}({stmt.params}):", stmt.span)
    program = stmt.query
    _block(out, program.body, indent + 1, _Context.of(program, ctx.depth + 1))
    out.emit(indent + 1, "if False: yield None")
    out.emit(indent + 1, "return __lm_no_return")
    out.emit(indent, f"{stmt.name} = __lm_query({name}, {stmt.name!r})", stmt.span)


def _query_string(out: _Emitter, stmt: ast.QueryStmt, indent: int, ctx: _Context) -> None:
    where = tuple(w for w in (ctx.program.where, stmt.where) if w is not None)
    holes = stmt.string.holes
    for part in stmt.string.parts:
        if isinstance(part, ast.Text):
            out.emit(indent, f"yield __lm_text({part.text!r})", part.span)
        elif isinstance(part, ast.Interpolation):
            out.emit(indent, f"yield __lm_text(__lm_str({part.expr.source}))", part.span)
        elif isinstance(part, ast.RoleTag):
            out.emit(indent, f"yield __lm_role({part.role!r})", part.span)
        else:
            distribution = stmt.distribution if part is holes[-1] else None
            if distribution is None and ctx.program.distribution is not None and part is ctx.last_hole:
                distribution = ctx.program.distribution
            _hole(out, part, where, distribution, indent, ctx)


def _nested_call(call: ast.Expr) -> str:
    """The arguments of ``__lm_nested`` for ``[X: call]``: the query, and a function that calls it with the
    hole's arguments (`[X: q(a, b=1)]`), so that the runtime decides what calling a query means."""
    node = call.python().body
    if not isinstance(node, pyast.Call):
        return f"({call.source})"
    target = pyast.unparse(node.func)
    node = pyast.Call(pyast.Name("__lm_target", pyast.Load()), node.args, node.keywords)
    return f"({target}), lambda __lm_target: {pyast.unparse(node)}"


def _hole(out: _Emitter, hole: ast.Hole, where: tuple[ast.Expr, ...], distribution: ast.Distribution | None,
          indent: int, ctx: _Context) -> None:
    site = HoleSite(len(out.sites), hole, where, distribution, ctx.depth, ctx.hole_names)
    out.sites.append(site)
    decorators = ", decorators=(" + "".join(f"({d.source}), " for d in hole.decorators) + ")" if hole.decorators else ""
    if hole.type is not None and hole.type.kind == "query" and hole.type.call is not None:
        out.emit(indent, f"{hole.name} = yield from __lm_nested({site.index}, {_nested_call(hole.type.call)}"
                         f"{decorators}, env={_visible(ctx)})", hole.span)
    else:
        out.emit(indent, f"{hole.name} = yield __lm_hole({site.index}, {_visible(ctx)}{decorators})", hole.span)
