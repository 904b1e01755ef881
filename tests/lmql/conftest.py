"""LMQL's own test suite (src/lmql/tests in eth-sri/lmql), written anew for lmlang: each file here is named after
the LMQL file it ports and checks what LMQL guarantees (constraints hold, nesting, decorator and control-flow
semantics, the number and order of results) on SmolLM2, rather than the text LMQL's random model writes."""
