"""Token masks: constraints compiled to byte automata and matched against a model's vocabulary.

:mod:`.automaton` holds the automata (built from regular expressions by :mod:`.regex`, over UTF-8 bytes from
:mod:`.utf8`), :mod:`.stops` adds stop phrases to an automaton, :mod:`.vocabulary` holds a model's tokens, and
:mod:`.matcher` the per-state masks.
"""

from lmlang.masks.automaton import (Automaton, any_text, from_regex, intersect, literals, negate, preceded,
                                    union)
from lmlang.masks.matcher import TokenMatcher
from lmlang.masks.regex import PatternError
from lmlang.masks.stops import firing_phrases, until_stop
from lmlang.masks.vocabulary import Vocabulary

__all__ = [
    "Automaton",
    "PatternError",
    "TokenMatcher",
    "Vocabulary",
    "any_text",
    "firing_phrases",
    "from_regex",
    "intersect",
    "literals",
    "negate",
    "preceded",
    "union",
    "until_stop",
]
