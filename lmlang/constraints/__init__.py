"""The constraint compiler: a hole's ``where`` conditions become a token mask and a check of the final value.

:func:`plan_hole` reads the conditions that apply to one hole (:mod:`.conditions`), whose meanings are written
once in :mod:`.meaning`, and returns a :class:`HolePlan`: stop phrases, a token budget, a
:class:`~lmlang.masks.TokenMatcher` per vocabulary, and ``finish`` to check and convert the value.
"""

from lmlang.constraints.plan import HolePlan, plan_hole

__all__ = ["HolePlan", "plan_hole"]
