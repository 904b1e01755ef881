"""Context-free masks: grammars (Lark EBNF, GBNF) and JSON Schema, matched by llguidance.

A regular automaton cannot hold nesting at any depth, so grammars and schemas go to llguidance (an Earley parser
over a lexer of regular terminals, with a token trie: the engine llama.cpp, vLLM and SGLang ship; the choice and
its figures are in benchmarks/README.md). A :class:`Grammar` is the compiled text, checked once;
:class:`GrammarMatcher` steps one generation through it and through lmlang's own regular matcher for the rest of
the hole's constraints (stop phrases, character bounds, REGEX and friends), allowing a token only where both do.

The decoder's states are ints that never change meaning (beam search keeps several and comes back to them), while
an llguidance matcher is a mutable parser. So a state is a node of the tree of token paths taken in this
generation: a node remembers its parent and token, and its parser is a copy of its parent's advanced by that
token, made when first needed and dropped when many newer ones are kept (it is rebuilt from the nearest kept
ancestor). A matcher belongs to one hole's generation; its masks and parsers go with it.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

import llguidance
import llguidance.gbnf_to_lark
import numpy as np

from lmlang.masks.automaton import any_text
from lmlang.masks.matcher import ListingMatcher, TokenMatcher
from lmlang.masks.vocabulary import Vocabulary

_PARSERS_KEPT = 256  # parsers kept per generation (the path's newest; older ones are rebuilt on demand)
_MASKS_KEPT = 64  # allowed-id arrays kept per generation (262,144 tokens on Gemma: a few MB at most)


class GrammarError(ValueError):
    """A grammar or schema llguidance refuses; the message says what and where."""


class Grammar:
    """A grammar compiled for llguidance (its JSON form), checked when made; ``key`` identifies it."""

    def __init__(self, text: str, describe: str) -> None:
        self.text = text
        self.describe = describe
        self.key = "llg:" + hashlib.sha1(text.encode()).hexdigest()
        failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(text, _byte_tokenizer())
        if failed:
            raise GrammarError(_clean(messages[0]))

    def accepts(self, data: bytes) -> bool:
        """Whether ``data`` is a complete sentence of the grammar: the check on a finished value."""
        parser = llguidance.LLMatcher(_byte_tokenizer(), self.text, log_level=0)
        return parser.consume_tokens(list(data)) and parser.is_accepting()


def lark(source: str, describe: str = "the grammar") -> Grammar:
    """A grammar in Lark's EBNF (llguidance's dialect: ``start`` is the start rule, terminals are regexes)."""
    return Grammar(llguidance.LLMatcher.grammar_from_lark(source), describe)


def gbnf(source: str, describe: str = "the grammar") -> Grammar:
    """A grammar in llama.cpp's GBNF (``root ::= ...``)."""
    try:
        return lark(llguidance.gbnf_to_lark.gbnf_to_lark(source), describe)
    except GrammarError:
        raise
    except Exception as err:  # the converter raises whatever its own parser raises
        raise GrammarError(f"cannot read the GBNF grammar: {err}") from None


def json_schema(schema: Any, options: dict[str, Any], describe: str = "the schema") -> Grammar:
    """The JSON texts valid under ``schema`` (a dict or bool), written with ``options`` (llguidance's
    JsonCompileOptions: separators, whitespace, lenient)."""
    try:
        text = llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=options)  # type: ignore[arg-type]
    except ValueError as err:
        raise GrammarError(str(err)) from None
    return Grammar(text, describe)


def lark_grammar(grammars: list[dict[str, Any]], describe: str) -> Grammar:
    """Several grammars referring to each other by name (``@name`` in Lark), the first the start."""
    return Grammar(json.dumps({"grammars": grammars}), describe)


def _clean(message: str) -> str:
    return message.strip().removeprefix("Error: ").strip()


# ------------------------------------------------------------------------------------------ tokenizers

class _Tokens:
    """A vocabulary as llguidance's TokenizerWrapper reads it: token bytes (special tokens marked with a leading
    0xFF, which is never text), the end token, and a tokenize function (greedy longest match: llguidance only uses
    it for prompts and forced text, which lmlang tokenizes itself)."""

    def __init__(self, token_bytes: list[bytes], special: frozenset[int], eos: int) -> None:
        self.eos_token_id = eos
        self.bos_token_id = None
        self.tokens = [b"\xff<special_%d>" % i if (i in special or not b) else b for i, b in enumerate(token_bytes)]
        self.special_token_ids = sorted(i for i, b in enumerate(token_bytes) if i in special or not b)
        self._ids = {b: i for i, b in enumerate(self.tokens) if i not in special and b}
        self._longest = max((len(b) for b in self._ids), default=1)

    def __call__(self, data: bytes | str) -> list[int]:
        text = data.encode() if isinstance(data, str) else data
        out, i = [], 0
        while i < len(text):
            for width in range(min(self._longest, len(text) - i), 0, -1):
                found = self._ids.get(text[i:i + width])
                if found is not None:
                    out.append(found)
                    i += width
                    break
            else:
                i += 1  # a byte no token spells: nothing can write it
        return out


_BYTE_TOKENIZER: list[Any] = []


def _byte_tokenizer() -> Any:
    """One token per byte (and an end token): for validating grammars and checking finished values."""
    if not _BYTE_TOKENIZER:
        tokens = _Tokens([bytes([b]) for b in range(256)] + [b""], frozenset({256}), 256)
        _BYTE_TOKENIZER.append(llguidance.LLTokenizer(llguidance.TokenizerWrapper(tokens), eos_token=256))
    return _BYTE_TOKENIZER[0]


# One llguidance tokenizer per model vocabulary (building one walks every token: about a second on Gemma).
_TOKENIZERS: OrderedDict[tuple[str, int], Any] = OrderedDict()
_TOKENIZERS_KEPT = 4


def tokenizer(vocab: Vocabulary) -> Any:
    key = (vocab.key, vocab.size)
    found = _TOKENIZERS.get(key)
    if found is None:
        special = vocab.special | vocab.eog
        eos = min(vocab.eog) if vocab.eog else vocab.size
        token_bytes = list(vocab.token_bytes) + ([b""] if not vocab.eog else [])
        wrapper = llguidance.TokenizerWrapper(_Tokens(token_bytes, frozenset(special | {eos}), eos))
        found = _TOKENIZERS[key] = llguidance.LLTokenizer(wrapper, eos_token=eos)
        if len(_TOKENIZERS) > _TOKENIZERS_KEPT:
            _TOKENIZERS.popitem(last=False)
    else:
        _TOKENIZERS.move_to_end(key)
    return found


# ------------------------------------------------------------------------------------------ matching

class _Node:
    __slots__ = ("parent", "token", "regular", "parsers", "children", "forced")

    def __init__(self, parent: int, token: int, regular: int) -> None:
        self.parent = parent
        self.token = token
        self.regular = regular  # the regular matcher's state
        self.parsers: list[Any] | None = None  # one llguidance matcher per grammar, advanced to this node
        self.children: dict[int, int] = {}
        self.forced: bytes | None = None  # what the grammars force from here, once asked


class GrammarMatcher(ListingMatcher):
    """Grammars (all must hold) and a regular :class:`TokenMatcher` on one vocabulary, for one generation.

    Speaks the decoder's matcher protocol (``start``, ``advance``, ``accepts``, ``forced``, ``choices``,
    ``allowed_mass``, ``allowed``); states are ints, 0 and below dead.
    """

    def __init__(self, grammars: list[Grammar], vocab: Vocabulary, regular: TokenMatcher) -> None:
        self.grammars = grammars
        self.vocab = vocab
        self.size = vocab.size
        self.regular = regular
        self._tokenizer = tokenizer(vocab)
        roots = [llguidance.LLMatcher(self._tokenizer, g.text, log_level=0) for g in grammars]
        for grammar, root in zip(grammars, roots):
            if root.is_error():
                raise GrammarError(f"{grammar.describe}: {_clean(root.get_error())}")
        self._nodes: list[_Node | None] = [None, _Node(0, -1, regular.start())]
        self._nodes[1].parsers = roots  # type: ignore[union-attr]
        self._kept: OrderedDict[int, None] = OrderedDict()
        self._masks: OrderedDict[int, np.ndarray] = OrderedDict()
        self._eog = vocab.eog
        self._eog_ids = vocab.eog_ids
        # Alone, a grammar needs no regular mask: llguidance never allows a special token.
        self._regular_free = regular.max_chars is None and regular.automaton.key == any_text().key

    def start(self) -> int:
        return 1 if self.regular.start() > 0 else -1

    def _parsers(self, state: int) -> list[Any]:
        node = self._nodes[state]
        assert node is not None
        if node.parsers is None:
            path, at = [], state
            while self._nodes[at].parsers is None:  # type: ignore[union-attr]
                path.append(self._nodes[at].token)  # type: ignore[union-attr]
                at = self._nodes[at].parent  # type: ignore[union-attr]
            path.reverse()
            parsers = [p.deep_copy() for p in self._nodes[at].parsers]  # type: ignore[union-attr]
            for p in parsers:
                p.consume_tokens(path)
            node.parsers = parsers
            self._kept[state] = None
            if len(self._kept) > _PARSERS_KEPT:
                old, _ = self._kept.popitem(last=False)
                self._nodes[old].parsers = None  # type: ignore[union-attr]
        elif state in self._kept:
            self._kept.move_to_end(state)
        return node.parsers

    def accepts(self, state: int) -> bool:
        if state <= 0:
            return False
        node = self._nodes[state]
        if not self.regular.accepts(node.regular):  # type: ignore[union-attr]
            return False
        return all(p.is_accepting() for p in self._parsers(state))

    def forced(self, state: int) -> bytes | None:
        return None

    def sole(self, state: int) -> int | None:
        """The one token allowed next, when exactly one is and the value may not end here; else None."""
        # One allowed token means its bytes are forced: where no grammar forces a byte, the mask is not needed.
        if not self.forced_text(state):
            return None
        ids = self.ids(state)
        return int(ids[0]) if len(ids) == 1 else None

    def forced_text(self, state: int) -> bytes:
        """The bytes every value from ``state`` goes on with before it may end or branch, as the grammars force
        them (b"": none); the regular constraints are checked token by token by ``advance``."""
        if state <= 0 or self.accepts(state):
            return b""
        node = self._nodes[state]
        assert node is not None
        if node.forced is None:
            node.forced = max((bytes(p.compute_ff_bytes()) for p in self._parsers(state)), key=len, default=b"")
        return node.forced

    def only_end(self, state: int) -> bool:
        """Whether the value is complete here and nothing may extend it."""
        if state <= 0 or not self.accepts(state):
            return False
        ids = self.ids(state)
        return bool(len(ids)) and bool(np.isin(ids, self._eog_ids).all())

    def advance(self, state: int, token: int) -> int:
        if state <= 0:
            return -1
        if token in self._eog:
            return state if self.accepts(state) else -1
        node = self._nodes[state]
        assert node is not None
        child = node.children.get(token)
        if child is not None:
            return child
        regular = self.regular.advance(node.regular, token)
        if regular < 0:
            return -1
        mask = self._masks.get(state)
        if mask is not None:
            ok = bool(np.isin(token, mask, assume_unique=True))
        else:
            ok = all(p.validate_tokens([token]) == 1 for p in self._parsers(state))
        if not ok:
            return -1
        child = len(self._nodes)
        self._nodes.append(_Node(state, token, regular))
        node.children[token] = child
        return child

    def ids(self, state: int) -> np.ndarray:
        """The allowed token ids of ``state``, ascending."""
        if state <= 0:
            return np.zeros(0, np.intp)
        found = self._masks.get(state)
        if found is not None:
            self._masks.move_to_end(state)
            return found
        node = self._nodes[state]
        size = self.vocab.size
        row = None if self._regular_free else self.regular.allowed(node.regular).copy()  # type: ignore[union-attr]
        for parser in self._parsers(state):
            bits = np.unpackbits(np.frombuffer(parser.compute_bitmask(), np.uint8), count=size, bitorder="little")
            row = bits.view(bool) if row is None else row & bits.view(bool)
        row[self._eog_ids] = self.accepts(state)
        found = self._masks[state] = np.flatnonzero(row)
        if len(self._masks) > _MASKS_KEPT:
            self._masks.popitem(last=False)
        return found
