"""The wording of syntax errors: what the parser found, what it was waiting for, in words a user reads.

Plain text in, plain text out: terminals arrive as their names (``COLON``, ``_NEWLINE``) with the literal text of
those that have one, so this module knows the grammar's vocabulary but nothing of the parser that uses it.
"""

from __future__ import annotations

import re

CLOSING = {"(": ")", "[": "]", "{": "}"}

# Statements whose header ends with ':' (to say "after the for header").
HEADERS = ("if", "elif", "else", "for", "while", "def", "class", "with", "try", "except", "finally", "cascade",
           "route", "case", "ensemble", "async", "match")

# What the parser was waiting for, in words. Literal terminals (`:`, `if`) are quoted as written instead.
WORDS = {
    "NAME": "a name",
    "IDENT": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "DEC_NUMBER": "a number",
    "HEX_NUMBER": "a number",
    "OCT_NUMBER": "a number",
    "BIN_NUMBER": "a number",
    "FLOAT_NUMBER": "a number",
    "IMAG_NUMBER": "a number",
    "_NEWLINE": "the end of the line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "the end of the file",
    "FROM_KW": "'from'",
    "WHERE_KW": "'where'",
    "DISTRIBUTION_KW": "'distribution'",
    "ASYNC_KW": "'async'",
    "ENSEMBLE_KW": "'ensemble'",
    "CASCADE_KW": "'cascade'",
    "ROUTE_KW": "'route'",
    "ASYNC": "'async'",
    "AWAIT": "'await'",
}

# Terminals that can start an expression: when several are expected, say "an expression".
EXPRESSION_STARTS = {"NAME", "IDENT", "STRING", "LONG_STRING", "DEC_NUMBER", "FLOAT_NUMBER", "LPAR", "LSQB", "LBRACE",
                     "MINUS", "PLUS", "TILDE", "NOT", "LAMBDA", "AWAIT", "NONE", "TRUE", "FALSE"}
EXPRESSION_STARTS |= {"STAR", "CASE", "MATCH", "HEX_NUMBER", "OCT_NUMBER", "BIN_NUMBER", "IMAG_NUMBER", "__ANON_ELLIPSIS"}
# The terminals of `name` (the grammar's override, soft keywords included): when just these are expected, say "a name".
NAME_TERMINALS = {"IDENT", "MATCH", "CASE"}
OPERATORS = {"+", "-", "*", "/", "//", "%", "@", "**", "&", "|", "^", "<<", ">>", "<", ">", "==", ">=", "<=", "!=",
             "<>", ".", "if", "in", "is", "not", "and", "or", "("}


def never_closed(bracket: str) -> str:
    return f"'{bracket}' is never closed: add the matching '{CLOSING[bracket]}'"


def unexpected(kind: str, text: str, expected: set[str], header_word: str, literals: dict[str, str]) -> str:
    """The parser found the terminal ``kind`` (reading ``text``) where it could take only ``expected``; the
    statement it stands in starts with ``header_word``. ``literals`` gives the text of literal terminals."""
    names = {name.replace("python__", "") for name in expected}
    header = f" after the {header_word} header" if header_word in HEADERS else ""
    if kind == "_INDENT":
        return "unexpected indent"
    if kind in ("WHERE_KW", "DISTRIBUTION_KW") and kind not in names:
        return f"'{text}' can only follow a query string (a string literal used as a statement)"
    if "_INDENT" in names:
        return f"expected an indented block{header}"
    if "COLON" in names and header and kind in ("_NEWLINE", "$END"):
        return f"expected ':'{header}"
    return f"expected {_expected_words(names, literals)}, found {_found_words(kind, text)}"


def _expected_words(names: set[str], literal: dict[str, str]) -> str:
    if names == NAME_TERMINALS:
        return "a name"
    words: list[str] = []
    if {"DEF", "PASS", "RETURN"} <= names:
        words.append("a statement")
        names = {n for n in names if n not in EXPRESSION_STARTS and not literal.get(n, "").isalpha()}
    if len(names & EXPRESSION_STARTS) >= 3:
        words.append("an expression")
        names = {n for n in names - EXPRESSION_STARTS if literal.get(n) != "..."}
    operators = {n for n in names if n in literal and literal[n] in OPERATORS}
    if len(operators) >= 3:
        words.append("an operator")
        names = names - operators
    for name in sorted(names, key=lambda n: (n not in literal or literal[n].isalpha(), n)):
        word = WORDS.get(name) or (f"'{literal[name]}'" if name in literal else None)
        if word and word not in words:
            words.append(word)
    if len(words) > 5:
        words = words[:5] + ["..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _found_words(kind: str, text: str) -> str:
    kind = kind.replace("python__", "")
    if kind in ("NAME", "IDENT"):
        return f"the name '{text}'"
    if kind in WORDS:
        return WORDS[kind]
    return f"'{text}'"


def header_of(text: str, offset: int) -> str:
    """The first word of the statement an error at ``offset`` is in: its own line, or the line before when the
    error is at the start of a line (a missing block)."""
    line_start = text.rfind("\n", 0, offset) + 1
    if not text[line_start:offset].strip():
        line_start = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
    match = re.match(r"\s*([A-Za-z_]\w*)", text[line_start:])
    return match.group(1) if match else ""


def unreadable(text: str, start: int) -> tuple[int, str]:
    """Where the lexer stopped at ``start`` of ``text`` because no token begins there: the offset to point at
    and what to say."""
    if text[max(start - 2, 0) : start + 1] in ('"""', "'''"):
        start -= 2  # the lexer read the first two quotes as an empty string
    quote = re.match(r"[rRbBfFuU]{0,2}('\'\'\'|\"\"\"|'|\")", text[start:])
    if quote:
        return start, f"unterminated string: add the closing {quote.group(1)}"
    if re.match(r"\\[ \t\f]+\r?\n", text[start:]):
        return start, "a backslash that continues a line must end it, as in Python: remove the spaces after it"
    return start, f"unexpected character {text[start:start + 1]!r}"
