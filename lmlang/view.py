"""Results drawn as HTML: the prompt with each hole's value highlighted, token by token.

Pure functions of :class:`~lmlang.result.Result`: the notebook view (``Result._repr_html_``), ``lmlang run --html``
and the playground all draw with them. The HTML is self-contained (its CSS inline, no script, nothing fetched),
so a saved page or a notebook shows the same thing offline. Each token's background is its probability on a red
(unlikely) to green (sure) scale, and hovering shows the numbers; text the constraints forced is grey and
striped, a token the constraints made the model give up is underlined in red with the token it wanted, and a stop
phrase's cut is struck through after the value.
"""

from __future__ import annotations

import html
import math
from typing import Any, Sequence

from lmlang.result import HoleSpan, Result, TokenPiece, register_html_view

_CSS = """
.lmlang-view{font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#fff;
  border:1px solid #d8dde6;border-radius:8px;padding:12px 14px;max-width:960px;overflow-x:auto}
.lmlang-view h4{margin:12px 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#5a6475}
.lmlang-view .lm-head{display:flex;flex-wrap:wrap;gap:6px 16px;color:#5a6475;font-size:12.5px}
.lmlang-view .lm-head b{color:#1d2330}
.lmlang-view .lm-prompt{white-space:pre-wrap;word-break:break-word;font:13px/1.9 ui-monospace,"SFMono-Regular",
  Menlo,Consolas,monospace;background:#f7f8fa;border-radius:6px;padding:10px 12px;margin:8px 0}
.lmlang-view .lm-hole{border:1.5px solid #3b6fd8;border-radius:4px;padding:1px 2px;position:relative;
  background:#eef3ff}
.lmlang-view .lm-label{font:600 10px/1 system-ui,sans-serif;color:#fff;background:#3b6fd8;border-radius:3px;
  padding:1px 4px;margin-right:3px;vertical-align:1px;user-select:none}
.lmlang-view .lm-nested{border-color:#8a5cd8;background:#f5f0ff}
.lmlang-view .lm-nested>.lm-label{background:#8a5cd8}
.lmlang-view .lm-tok{border-radius:2px;position:relative;cursor:default}
.lmlang-view .lm-tok:hover{outline:1.5px solid #1d2330}
.lmlang-view .lm-forced{background:repeating-linear-gradient(135deg,#e4e7ec 0 4px,#f4f5f7 4px 8px)!important;
  color:#5a6475}
.lmlang-view .lm-masked{text-decoration:underline wavy #d83b3b;text-underline-offset:3px}
.lmlang-view .lm-end{font:10px/1 system-ui,sans-serif;color:#5a6475;border:1px solid #b9c0cc;border-radius:3px;
  padding:0 3px;margin-left:2px;vertical-align:1px}
.lmlang-view .lm-cut{position:relative;margin-left:2px}
.lmlang-view .lm-cut s{color:#b03030;opacity:.8;font-size:12px}
.lmlang-view .lm-stop{font:10px/1 system-ui,sans-serif;color:#b03030;border:1px solid #e0a0a0;border-radius:3px;
  padding:0 3px;vertical-align:1px}
.lmlang-view [data-tip]:hover::after{content:attr(data-tip);position:absolute;left:0;top:100%;z-index:10;
  white-space:pre;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;background:#1d2330;color:#fff;
  padding:4px 7px;border-radius:4px;margin-top:3px;pointer-events:none}
.lmlang-view table{border-collapse:collapse;font-size:12.5px;margin:4px 0}
.lmlang-view th,.lmlang-view td{border-bottom:1px solid #e3e7ee;padding:3px 10px 3px 0;text-align:left;
  vertical-align:top}
.lmlang-view th{color:#5a6475;font-weight:600}
.lmlang-view .lm-detail{display:block;font-size:11px;color:#5a6475;font-weight:400;max-width:300px}
.lmlang-view td.lm-num{text-align:right;font-variant-numeric:tabular-nums}
.lmlang-view code{font:12.5px ui-monospace,Menlo,Consolas,monospace}
.lmlang-view .lm-scale{display:inline-flex;align-items:center;gap:6px;font-size:11.5px;color:#5a6475}
.lmlang-view .lm-scale i{display:inline-block;width:120px;height:9px;border-radius:3px;
  background:linear-gradient(90deg,hsl(0,75%,80%),hsl(60,75%,80%),hsl(120,55%,80%))}
.lmlang-view .lm-key{display:inline-block;padding:0 5px;border-radius:3px;font-size:11.5px}
.lmlang-view .lm-bar{display:inline-block;height:9px;background:#3b6fd8;border-radius:2px;vertical-align:middle}
.lmlang-view .lm-timeline{display:flex;gap:2px;margin:6px 0 2px;align-items:stretch}
.lmlang-view .lm-stage{min-width:36px;border-radius:4px;padding:3px 6px;font-size:11.5px;color:#1d2330;
  overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.lmlang-view .lm-accept{background:#cdebd3}.lmlang-view .lm-escalate{background:#fbe3bf}
.lmlang-view .lm-other{background:#dfe6f3}.lmlang-view .lm-error{background:#f6cccc}
.lmlang-view details{margin:6px 0}.lmlang-view summary{cursor:pointer}
"""


def probability_colour(logprob: float) -> str:
    """The background of a token of log-probability ``logprob``: red when unlikely, through yellow, to green."""
    p = math.exp(logprob) if logprob < 0 else 1.0
    return f"hsl({round(120 * p)},{75 - round(20 * p)}%,80%)"


def result_html(result: Result) -> str:
    """One result as an HTML fragment (with its own CSS): what ``Result._repr_html_`` shows."""
    return _frame(_result_body(result))


def results_html(results: Sequence[Result]) -> str:
    """Several results of one run (``n > 1``) ranked as the decoder ranked them, best first; one is drawn alone."""
    if len(results) == 1:
        return result_html(results[0])
    rows = "".join(
        f"<tr><td class='lm-num'>{i + 1}</td><td class='lm-num'>{r.logprob:.3f}</td>"
        f"<td>{_esc(_short(r.return_value if r.return_value is not None else r.variables))}</td></tr>"
        for i, r in enumerate(results))
    ranking = (f"<h4>{len(results)} candidates, best first</h4><table class='lm-candidates'><tr><th>rank</th>"
               f"<th>log-probability</th><th>result</th></tr>{rows}</table>")
    parts = [ranking]
    for i, r in enumerate(results):
        parts.append(f"<details class='lm-candidate'{' open' if i == 0 else ''}><summary>candidate {i + 1} "
                     f"(log-probability {r.logprob:.3f})</summary>{_result_body(r)}</details>")
    return _frame("".join(parts))


def document_html(results: Result | Sequence[Result], title: str = "lmlang result") -> str:
    """A whole HTML page of ``results``, for ``lmlang run --html``."""
    body = result_html(results) if isinstance(results, Result) else results_html(results)
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title></head>"
            f"<body style='margin:16px;background:#fff'>{body}</body></html>\n")


def _frame(body: str) -> str:
    return f"<div class='lmlang-view'><style>{_CSS}</style>{body}</div>"


def _result_body(result: Result) -> str:
    stats = result.stats
    head = (f"<div class='lm-head'><span>model <b>{_esc(result.model)}</b></span>"
            f"<span><b>{stats.prefill_tokens}</b> prompt tokens</span>"
            f"<span><b>{stats.generated_tokens}</b> generated</span><span><b>{stats.seconds:.2f}</b> s</span>"
            f"<span>log-probability <b>{result.logprob:.3f}</b></span></div>")
    legend = ("<div class='lm-head'><span class='lm-scale'>token probability 0 <i></i> 1</span>"
              "<span class='lm-key lm-forced'>forced</span>"
              "<span class='lm-key lm-masked'>constrained away</span>"
              "<span class='lm-stop'>stop</span> <span>a stop phrase ended the value</span></div>")
    parts = [head, f"<div class='lm-prompt'>{prompt_html(result)}</div>", legend, _variables(result)]
    if result.distributions:
        parts.append(_distributions(result))
    if result.trace:
        parts.append(trace_html(result.trace))
    return "".join(parts)


def placed_holes(result: Result) -> list[HoleSpan]:
    """The holes whose place in the prompt is known and holds their text, in order, none overlapping."""
    placed: list[HoleSpan] = []
    at = 0
    for hole in sorted(result.holes, key=lambda h: (h.start, h.end)):
        if at <= hole.start <= hole.end <= len(result.prompt):
            placed.append(hole)
            at = hole.end
    return placed


def prompt_html(result: Result) -> str:
    """The prompt with each hole's value highlighted: the prompt's text is plain, each value is a labelled box of
    its tokens."""
    out, at = [], 0
    for hole in placed_holes(result):
        out.append(_esc(result.prompt[at:hole.start]))
        out.append(_hole(hole, result.prompt[hole.start:hole.end]))
        at = hole.end
    out.append(_esc(result.prompt[at:]))
    return "".join(out)


def _hole(hole: HoleSpan, text: str) -> str:
    pieces = hole.score.pieces if hole.score is not None else ()
    kind = "lm-hole" if hole.score is not None else "lm-hole lm-nested"
    tip = f"{hole.var}" if hole.score is None else _score_tip(hole)
    label = f"<span class='lm-label' data-tip='{_attr(tip)}'>{_esc(hole.var)}</span>"
    drawn = "".join(p.text for p in pieces)
    if pieces and drawn == text:
        inner = "".join(_token(p) for p in pieces)
    else:  # a decorator rewrote the value, or it was scored (distribution) or given: drawn whole
        inner = _esc(text)
    cut = ""
    if hole.cut is not None:
        cut = (f"<span class='lm-cut' data-tip='ended by a stop phrase; cut off: {_attr(repr(hole.cut))}'>"
               f"<span class='lm-stop'>stop</span><s>{_esc(hole.cut)}</s></span>")
    return f"<span class='{kind}' data-var='{_attr(hole.var)}'>{label}{inner}{cut}</span>"


def _score_tip(hole: HoleSpan) -> str:
    score = hole.score
    assert score is not None
    lines = [hole.var, f"log-probability {score.logprob:.3f}", f"tokens {score.tokens}"]
    if score.mean_logprob is not None:
        lines.append(f"mean token probability {math.exp(score.mean_logprob):.3f}")
    if score.margin is not None:
        lines.append(f"margin {score.margin:.3f}")
    return "\n".join(lines)


def _token(piece: TokenPiece) -> str:
    p = math.exp(piece.logprob)
    if piece.end:
        tip = f"end of text  p={p:.3f}"
        if piece.wanted is not None:
            tip += f"\nthe model wanted {piece.wanted!r}"
        masked = " lm-masked" if piece.wanted is not None else ""
        return f"<span class='lm-tok lm-end{masked}' data-tip='{_attr(tip)}' data-p='{p:.4f}'>end</span>"
    classes = ["lm-tok"]
    if piece.forced:
        classes.append("lm-forced")
        tip = f"{piece.text!r}  forced by the constraints"
    else:
        tip = f"{piece.text!r}  p={p:.3f}  logprob={piece.logprob:.3f}"
    if piece.wanted is not None:
        classes.append("lm-masked")
        tip += f"\nconstrained away: the model wanted {piece.wanted!r}"
    style = "" if piece.forced else f" style='background:{probability_colour(piece.logprob)}'"
    return (f"<span class='{' '.join(classes)}'{style} data-tip='{_attr(tip)}' data-p='{p:.4f}'>"
            f"{_esc(piece.text)}</span>")


def _variables(result: Result) -> str:
    rows = []
    for name, value in result.variables.items():
        score = result.scores.get(name)
        numbers = "<td></td><td></td><td></td>"
        if score is not None:
            mean = "" if score.mean_logprob is None else f"{math.exp(score.mean_logprob):.3f}"
            margin = "" if score.margin is None else f"{score.margin:.3f}"
            numbers = f"<td class='lm-num'>{score.tokens}</td><td class='lm-num'>{mean}</td>" \
                      f"<td class='lm-num'>{margin}</td>"
        rows.append(f"<tr><td><code>{_esc(name)}</code></td><td><code>{_esc(_short(value))}</code></td>{numbers}</tr>")
    if result.return_value is not None:
        rows.append(f"<tr><td><b>return</b></td><td><code>{_esc(_short(result.return_value))}</code></td>"
                    "<td></td><td></td><td></td></tr>")
    if not rows:
        return ""
    return ("<h4>Variables</h4><table class='lm-variables'><tr><th>name</th><th>value</th><th>tokens</th>"
            f"<th>mean p</th><th>margin</th></tr>{''.join(rows)}</table>")


def _distributions(result: Result) -> str:
    parts = []
    for name, candidates in result.distributions.items():
        rows = "".join(f"<tr><td><code>{_esc(_short(c))}</code></td><td class='lm-num'>{p:.3f}</td>"
                       f"<td><span class='lm-bar' style='width:{max(1, round(160 * p))}px'></span></td></tr>"
                       for c, p in sorted(candidates, key=lambda cp: -cp[1]))
        parts.append(f"<h4>Distribution of {_esc(name)}</h4><table class='lm-distribution'>"
                     f"<tr><th>candidate</th><th>p</th><th></th></tr>{rows}</table>")
    return "".join(parts)


_TRACE_SHOWN = ("block", "line", "model", "decision", "measures", "prefill_tokens", "generated_tokens", "seconds",
                "cost")


def trace_html(trace: Sequence[dict[str, Any]]) -> str:
    """The stages of a run's multi-model blocks: a timeline (each stage's width its seconds) and a table of the
    stage, model, measures, decision and cost, with any other detail the block recorded."""
    total = sum(float(e.get("seconds", 0.0)) for e in trace) or 1.0
    bars = "".join(
        f"<div class='lm-stage {_decision_class(e)}' style='flex:{max(float(e.get('seconds', 0.0)) / total, 0.04):.3f}'"
        f" data-tip='{_attr(_stage_tip(e))}'>{_esc(str(e.get('model', '')))} · {_esc(str(e.get('decision', '')))}"
        f"</div>" for e in trace)
    rows = []
    for e in trace:
        measures = ", ".join(f"{k} = {v:.3g}" if isinstance(v, (int, float)) else f"{k} = {v}"
                             for k, v in (e.get("measures") or {}).items())
        other = "; ".join(f"{k}: {_short(v)}" for k, v in e.items() if k not in _TRACE_SHOWN and k != "cost_unit")
        rows.append(
            f"<tr class='{_decision_class(e)}-row'><td>{_esc(str(e.get('block', '')))}@{e.get('line', '')}</td>"
            f"<td>{_esc(str(e.get('model', '')))}</td><td>{_esc(measures)}</td>"
            f"<td><b>{_esc(str(e.get('decision', '')))}</b><span class='lm-detail'>{_esc(other)}</span></td>"
            f"<td class='lm-num'>{e.get('prefill_tokens', '')}</td><td class='lm-num'>{e.get('generated_tokens', '')}</td>"
            f"<td class='lm-num'>{float(e.get('seconds', 0.0)):.2f}</td>"
            f"<td class='lm-num'>{float(e.get('cost', 0.0)):.4g} {_esc(str(e.get('cost_unit', '')))}</td></tr>")
    spent = sum(float(e.get("cost", 0.0)) for e in trace)
    unit = trace[0].get("cost_unit", "") if trace else ""
    return (f"<h4>Multi-model trace</h4><div class='lm-timeline'>{bars}</div>"
            "<table class='lm-trace'><tr><th>stage</th><th>model</th><th>measures</th><th>decision</th>"
            "<th>prompt tokens</th><th>generated</th><th>seconds</th><th>cost</th></tr>"
            f"{''.join(rows)}<tr><td colspan='7'><b>total</b></td><td class='lm-num'><b>{spent:.4g} {_esc(str(unit))}"
            "</b></td></tr></table>")


def _decision_class(entry: dict[str, Any]) -> str:
    decision = str(entry.get("decision", ""))
    if "error" in entry or decision.startswith("failed"):
        return "lm-error"
    if decision.startswith(("accept", "answer", "chosen", "ran case")):
        return "lm-accept"
    if decision.startswith("escalate"):
        return "lm-escalate"
    return "lm-other"


def _stage_tip(entry: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {_short(v)}" for k, v in entry.items())


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _attr(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "&#10;")


register_html_view(result_html)
