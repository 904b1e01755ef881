"""Memory of many distinct queries without generating: compile, plan the hole and step its mask, N times.

What a long-running process keeps per query apart from llama.cpp's work (which benchmarks/memory.py includes):
the compiled program's module, automata, token matchers and their masks. Runs on older lmlang too (for a
comparison), so it does not use the session's API when it is absent.

    python benchmarks/memory_compile.py 1000
"""

import gc
import resource
import sys
import time

import numpy as np
def source(i):
    letters = "abcdefghijklmnopqrstuvwxyz"
    first, second = letters[i % 26], letters[(i // 26) % 26]
    return (f'"Write a code for item {i}: [CODE]" where REGEX(CODE, r"[{first}-z]{{1,{1 + i % 7}}}{second}?[0-9]'
            f'{{0,{i % 5}}}") and len(TOKENS(CODE)) < 6')
import lmlang
from lmlang.constraints import plan_hole
from lmlang.models import llama

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

model = llama.load("smollm2")
try:
    from lmlang.session import default_session
    dec = default_session().decoder(model)
    vocab = model.vocabulary()
    def matcher(plan):
        return dec.matchers.get_or_make(plan.matcher_key(vocab), lambda: plan.matcher(vocab))
except ImportError:
    from lmlang.masks import Vocabulary
    vocab = Vocabulary(model.token_bytes, model.special_tokens, model.eog_tokens, str(model.path))
    def matcher(plan):
        return plan.matcher(vocab)
logits = np.zeros(vocab.size, dtype=np.float32)
out = np.empty(vocab.size, dtype=np.float32)
n = int(sys.argv[1])
gc.collect(); base = rss(); t = time.time()
print("iterations rss growth", flush=True)
for i in range(1, n + 1):
    q = lmlang.compile(source(i))
    program = q.compiled(())
    site = program.sites[0]
    plan = plan_hole(site.hole.name, site.where, site.hole.type, {}, {})
    m = matcher(plan)
    state = m.start()
    m.choices(state, logits, out)
    for token in model.tokenize("ab1"):
        state = m.advance(state, token)
        if state < 0:
            break
        m.choices(state, logits, out)
    del q, program
    if i % 100 == 0:
        gc.collect()
        print(i, round(rss(), 1), round(rss() - base, 1), round((time.time() - t) / i, 3), flush=True)
print("query modules", sum(1 for k in sys.modules if k.startswith("__lmlang_query_")), flush=True)
