"""Chat templates: the text a model's template puts around one message of a role, read off the template by
rendering a sentinel message (llama.cpp's renderer, or jinja2 for templates it does not know)."""

from __future__ import annotations

import ctypes
import pathlib

import llama_cpp as llama

from lmlang.errors import ModelError

SENTINEL = "\u2063lmlang-content\u2063"


def role_markers(weights: object, path: pathlib.Path, name: str, role: str) -> tuple[str, str]:
    """The text before and after one message of ``role`` in the chat format of the model ``weights``."""
    rendered = render_message(weights, path, role) or render_message(weights, path, "user")
    prefix, sentinel, suffix = rendered.partition(SENTINEL)
    if not sentinel:
        raise ModelError(None, f"the chat template of {name} has no place for a '{role}' message")
    return prefix, suffix


def render_message(weights: object, path: pathlib.Path, role: str) -> str:
    """One sentinel message of ``role`` rendered by the model's template."""
    template = llama.llama_model_chat_template(weights, None)
    if template is None:
        template = builtin_template_name(weights, path)
    messages = (llama.llama_chat_message * 1)()
    messages[0].role = role.encode()
    messages[0].content = SENTINEL.encode()
    out = ctypes.create_string_buffer(4096)
    length = llama.llama_chat_apply_template(template, messages, 1, False, out, len(out))
    if length < 0:
        return render_jinja(template.decode("utf-8", "replace"), role)
    if length > len(out):
        out = ctypes.create_string_buffer(length)
        length = llama.llama_chat_apply_template(template, messages, 1, False, out, len(out))
    return out.raw[:length].decode("utf-8")


def builtin_template_name(weights: object, path: pathlib.Path) -> bytes:
    """llama.cpp's built-in template for this architecture, for GGUFs that carry none (Gemma 3's)."""
    buffer = ctypes.create_string_buffer(256)
    length = llama.llama_model_meta_val_str(weights, b"general.architecture", buffer, len(buffer))
    architecture = buffer.value if length > 0 else b""
    names = (ctypes.c_char_p * 128)()
    builtin = set(names[: min(128, llama.llama_chat_builtin_templates(names, 128))])
    for candidate in (architecture, architecture.rstrip(b"0123456789")):
        if candidate in builtin:
            return candidate
    raise ModelError(None, f"{path} has no chat template, so role tags cannot be used with it")


def render_jinja(template: str, role: str) -> str:
    """One message rendered by a chat template llama.cpp does not know, through jinja2."""
    import jinja2.sandbox

    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        return environment.from_string(template).render(
            messages=[{"role": role, "content": SENTINEL}], add_generation_prompt=False, bos_token="", eos_token=""
        )
    except jinja2.TemplateError as exc:
        raise ModelError(None, f"the model's chat template cannot be rendered: {exc}") from None
