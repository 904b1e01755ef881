"""Whether a name is a model lmlang can run, without loading it: the resolver the checker is given."""

from __future__ import annotations

from lmlang.errors import ModelError
from lmlang.models.registry import is_alias, resolve

# Names LMQL queries give to hosted models (OpenAI's, "local:..." transformers); lmlang runs only local GGUF files,
# so such a query is fine but needs --model to pick one.
REMOTE_PREFIXES = ("gpt", "chatgpt", "text-", "davinci", "local:", "openai", "azure")
# The problems that do not stop a query from running (given a model to run on): information, not errors.
INFORMATION = frozenset({"remote-model"})


def model_name_problem(name: str) -> tuple[str, str] | None:
    """None if ``name`` is a model; else a problem's code and message. A hosted model's name is the problem
    ``remote-model``: the query is fine, but needs another model to run."""
    if is_alias(name):  # resolving Gemma's alias would assemble its file: too slow while typing
        return None
    try:
        resolve(name)
    except ModelError as error:
        if is_remote(name):
            return "remote-model", f"'{name}' is not a local model; run with --model (e.g. --model smollm2)"
        return "unknown-model", error.message
    return None


def is_remote(name: str) -> bool:
    lowered = name.lower()
    return not lowered.endswith(".gguf") and ("/" in name or lowered.startswith(REMOTE_PREFIXES))
