"""Token masks on the real vocabularies: exactly the tokens a brute-force partial match allows."""

from __future__ import annotations

import numpy as np
import pytest
import regex

from lmlang.masks import TokenMatcher, Vocabulary, from_regex

# (pattern, prefixes already generated, characters an incomplete UTF-8 token could be completing)
CASES = [
    (r" ?(?:0|-?[1-9][0-9]*)", ["", " 4", "-"], ""),
    (r" ?-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", ["", "3."], ""),
    (r"[0-9]{2}/[0-9]{2}/[0-9]{4}", ["", "12/0"], ""),
    (r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", ["", "john@example"], ""),
    (r"(café|naïve)", ["", "caf", "na"], "éï"),
    (r"[a-z]+ [a-z]+", ["", "hello", "hello w"], ""),
]


def _texts(vocab: Vocabulary) -> list[bytes | None]:
    return [None if (i in vocab.special or i in vocab.eog or not b) else b for i, b in enumerate(vocab.token_bytes)]


def _reference(pattern: str, prefix: str, vocab: Vocabulary, completions: str) -> np.ndarray:
    """Every token tested one by one with the `regex` module's partial matching."""
    compiled = regex.compile(pattern)
    head = prefix.encode()
    allowed = np.zeros(vocab.size, dtype=bool)
    for token, data in enumerate(_texts(vocab)):
        if data is None:
            continue
        candidates = [head + data]
        try:
            (head + data).decode()
        except UnicodeDecodeError:  # ends inside a character: allowed if some character could complete it
            candidates = [head + data + c.encode()[k:] for c in completions for k in range(1, 4) if c.encode()[:k] == data[-k:]]
        for candidate in candidates:
            try:
                text = candidate.decode()
            except UnicodeDecodeError:
                continue
            if compiled.fullmatch(text, partial=True):
                allowed[token] = True
                break
    if compiled.fullmatch(prefix):
        allowed[list(vocab.eog)] = True
    return allowed


@pytest.mark.parametrize(("pattern", "prefixes", "completions"), CASES, ids=[c[0][:20] for c in CASES])
def test_mask_equals_brute_force(vocab, pattern, prefixes, completions):
    automaton = from_regex(pattern)
    matcher = TokenMatcher(automaton, vocab)
    for prefix in prefixes:
        state = automaton.step(automaton.start, prefix.encode())
        assert state > 0
        got = matcher.allowed(state)
        want = _reference(pattern, prefix, vocab, completions)
        diff = np.flatnonzero(got != want)
        assert not len(diff), [(int(t), vocab.token_bytes[t], bool(got[t])) for t in diff[:10]]


def test_mask_logits_applies_the_allowed_set(vocab):
    automaton = from_regex(r"[0-9]{2}/[0-9]{2}/[0-9]{4}")
    matcher = TokenMatcher(automaton, vocab)
    logits = np.random.default_rng(0).standard_normal(vocab.size).astype(np.float32)
    masked = logits.copy()
    matcher.mask_logits(matcher.start(), masked)
    allowed = matcher.allowed(matcher.start())
    assert np.array_equal(np.isfinite(masked), allowed)
    assert np.array_equal(masked[allowed], logits[allowed])


def test_every_allowed_token_leads_somewhere_valid(smollm2_vocab):
    vocab = smollm2_vocab
    automaton = from_regex(r"(yes|no|maybe)\.")
    matcher = TokenMatcher(automaton, vocab)
    frontier, seen = [matcher.start()], set()
    while frontier:
        state = frontier.pop()
        if state in seen:
            continue
        seen.add(state)
        allowed = np.flatnonzero(matcher.allowed(state))
        assert len(allowed) or matcher.accepts(state)
        for token in allowed:
            nxt = matcher.advance(state, int(token))
            assert nxt >= 0
            if int(token) not in vocab.eog:
                frontier.append(nxt)
    assert matcher.forced(automaton.step(automaton.start, b"may")) == b"be."


def test_character_bound_is_exact(vocab):
    automaton = from_regex(r"[a-z ]*")
    matcher = TokenMatcher(automaton, vocab, max_chars=5)
    state = matcher.advance(matcher.start(), vocab.token_bytes.index(b"ab"))
    assert state >= 0
    allowed = matcher.allowed(state)
    for token in np.flatnonzero(allowed):
        data = vocab.token_bytes[token]
        if int(token) not in vocab.eog:
            assert automaton.step(automaton.start, b"ab" + data) and len(("ab" + data.decode())) <= 5
    for token, data in enumerate(vocab.token_bytes):
        if token in vocab.special or token in vocab.eog or not data:
            continue
        fits = regex.fullmatch(r"[a-z ]*", data.decode("utf-8", "replace")) and len(data) <= 3
        assert bool(allowed[token]) == bool(fits), data
    assert matcher.accepts(state)
    assert matcher.advance(state, vocab.token_bytes.index(b"hello")) == -1


def test_special_tokens_never_match_and_eog_only_when_complete(smollm2_vocab):
    vocab = smollm2_vocab
    matcher = TokenMatcher(from_regex(r"[0-9]+"), vocab)
    start = matcher.start()
    eog = sorted(vocab.eog)
    assert not matcher.allowed(start)[eog].any()
    after = matcher.advance(start, vocab.token_bytes.index(b"7"))
    assert matcher.allowed(after)[eog].all()
    assert not matcher.allowed(after)[sorted(vocab.special - vocab.eog)].any()
    assert matcher.advance(start, eog[0]) == -1


@pytest.mark.parametrize("pattern", [r"[0-9]+", r"[a-z ]+", r"(?s:.*)", r"[^@]*"])
@pytest.mark.parametrize("max_chars", [None, 6])
def test_every_way_of_masking_agrees(vocab, pattern, max_chars):
    matcher = TokenMatcher(from_regex(pattern), vocab, max_chars)
    logits = np.random.default_rng(3).standard_normal(vocab.size).astype(np.float32)
    logits.flags.writeable = False  # as the backend hands them out
    state = matcher.start()
    for _ in range(2):
        allowed = matcher.allowed(state)
        expected = np.where(allowed, logits, -np.inf)
        in_place = logits.copy()
        matcher.mask_logits(state, in_place)
        assert np.array_equal(in_place, expected)
        assert np.array_equal(matcher.masked_copy(state, logits), expected)
        buffer = np.zeros_like(logits)
        assert matcher.masked_copy(state, logits, buffer) is buffer and np.array_equal(buffer, expected)
        sparse = matcher.allowed_logits(state, logits, most=vocab.size)
        ids, values = sparse
        assert sorted(ids.tolist()) == np.flatnonzero(allowed).tolist() and np.array_equal(values, logits[ids])
        if allowed.sum() > 1024:
            assert matcher.allowed_logits(state, logits) is None
        chosen_ids, chosen = matcher.choices(state, logits, np.empty_like(logits))
        dense = expected if chosen_ids is None else np.full_like(logits, -np.inf)
        if chosen_ids is not None:
            dense[chosen_ids] = chosen
        assert np.array_equal(dense, expected)
        weights = np.exp(logits - logits.max())
        mass = matcher.allowed_mass(state, weights, float(weights.sum(dtype=np.float64)))
        assert mass == pytest.approx(float(weights[allowed].sum(dtype=np.float64)), rel=1e-5)
        token = int(ids[np.argmax(values)])
        state = matcher.advance(state, token) if token not in vocab.eog else state
    assert matcher.allowed_logits(-1, logits)[0].size == 0
    assert np.isneginf(matcher.masked_copy(-1, logits)).all()
