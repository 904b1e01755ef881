"""The playground in Chromium: it opens the folder's queries with syntax colouring, shows the checker's messages
as you type, runs a query on SmolLM2 with the output streamed, and draws the holes and the multi-model trace; a
bad request or a failing handler gets a JSON error and the server stays up."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from browser_support import keep_screenshot

CASCADE = '''review = "The soup was lovely and the staff were kind."
"Review: {review}\\nSentiment:[CLS]" where CLS in [" positive", " negative"]
cascade "smollm2" until margin(ANSWER) >= 0.0:
    "\\nQ: What did the reviewer like?\\nA:[ANSWER]" where STOPS_AT(ANSWER, ".") and len(TOKENS(ANSWER)) < 12
return CLS.strip()
'''


def post(url: str, body: object) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def type_query(page: Any, text: str) -> None:
    page.fill("#source", text)
    page.wait_for_function("document.querySelector('#diagnostics li') !== null")


def test_the_page_opens_a_query_of_the_folder_coloured(page: Any, playground_url: str) -> None:
    page.goto(playground_url)
    page.wait_for_function("document.querySelector('#source').value.length > 0")
    assert page.locator("#queries option").count() > 10
    assert page.locator("#highlight .t-hole").count() >= 1
    assert page.locator("#highlight .t-string").count() >= 1
    assert page.locator("#model option[value='smollm2']").count() == 1


def test_the_checker_speaks_as_you_type(page: Any, playground_url: str) -> None:
    page.goto(playground_url)
    type_query(page, '"Q: hi\\nA:[X]" where STOPZ_AT(X, ".")\n')
    page.wait_for_function("document.querySelector('#diagnostics li').textContent.includes('STOPZ_AT')")
    assert "unknown constraint function" in page.locator("#diagnostics li").first.inner_text()
    assert page.locator("#marks .mark").inner_text() == "STOPZ_AT"
    type_query(page, '"Tell me about {topic}:[X]" where STOPS_AT(X, ".")\n')
    page.wait_for_selector("#inputs input[name='topic']")
    page.wait_for_function("document.querySelector('#diagnostics li').textContent === 'no problems'")


@pytest.mark.model
def test_a_run_streams_and_draws_the_holes_and_the_trace(page: Any, playground_url: str, smollm2: Any,
                                                         tmp_path: Path) -> None:
    page.goto(playground_url)
    page.wait_for_function("document.querySelector('#source').value.length > 0")
    page.select_option("#queries", "")  # a new query, not the folder's first
    type_query(page, CASCADE)
    page.select_option("#model", "smollm2")
    page.click("#run")
    page.wait_for_selector("#view .lmlang-view", timeout=120_000)
    assert "Review: The soup was lovely" in page.locator("#stream").inner_text()
    assert page.locator("#stream .gen").count() >= 1
    holes = page.locator("#view .lm-prompt .lm-hole")
    assert [holes.nth(i).get_attribute("data-var") for i in range(holes.count())] == ["CLS", "ANSWER"]
    assert holes.first.locator(".lm-label").inner_text() == "CLS"
    assert holes.first.inner_text().startswith("CLS")
    assert holes.nth(1).locator(".lm-tok").count() >= 1
    rows = page.locator("#view table.lm-trace tr")
    assert rows.count() == 3  # header, the one stage, the total
    assert "cascade@3" in rows.nth(1).inner_text() and "smollm2" in rows.nth(1).inner_text()
    assert "accept" in rows.nth(1).inner_text() or "answer" in rows.nth(1).inner_text()
    assert page.locator("#view .lm-timeline .lm-stage").count() == 1
    results = page.evaluate("window.lastResults")
    assert results[0]["variables"]["CLS"] in (" positive", " negative")
    assert page.locator("#status").inner_text().startswith("done")
    holes.nth(1).locator(".lm-tok").first.hover()
    shot = tmp_path / "playground.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000
    keep_screenshot(shot, "playground.png")


@pytest.mark.model
def test_a_query_failing_at_run_time_shows_its_error_and_the_server_goes_on(page: Any, playground_url: str,
                                                                           smollm2: Any) -> None:
    page.goto(playground_url)
    page.wait_for_function("document.querySelector('#source').value.length > 0")
    type_query(page, '"A:[X]" where len(TOKENS(X)) < 3\nreturn 1 / 0\n')
    page.click("#run")
    page.wait_for_function("document.querySelector('#error').textContent.length > 0", timeout=60_000)
    assert "ZeroDivisionError" in page.locator("#error").inner_text()
    assert page.locator("#status").inner_text().startswith("failed")
    status, data = post(playground_url + "/api/check", {"source": '"ok[X]"'})
    assert status == 200 and data["diagnostics"] == []


def test_bad_requests_get_json_errors(playground_url: str) -> None:
    status, data = post(playground_url + "/api/run", {"source": '"A:[X]" where FOO(X)'})
    assert status == 400 and "FOO" in data["error"] and data["line"] == 1
    status, data = post(playground_url + "/api/run", {"source": '"About {topic}:[X]"'})
    assert status == 400 and "topic" in data["error"]
    status, data = post(playground_url + "/api/check", {"source": 5})
    assert status == 400 and data["kind"] == "UsageError"
    request = urllib.request.Request(playground_url + "/api/check", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=30)
    assert failed.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(playground_url + "/api/queries/..%2Fpyproject.toml", timeout=30)
    assert missing.value.code == 404


def test_a_failing_handler_answers_500_with_a_message(playground_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmlang.playground import app

    def broken(source: str, name: str = "") -> dict[str, Any]:
        raise RuntimeError("the checker broke")

    monkeypatch.setattr(app, "diagnose", broken)
    status, data = post(playground_url + "/api/check", {"source": '"A:[X]"'})
    assert status == 500 and "the checker broke" in data["error"]
    monkeypatch.undo()
    status, _ = post(playground_url + "/api/check", {"source": '"A:[X]"'})
    assert status == 200


def test_the_command_says_when_the_folder_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from lmlang.cli import main

    assert main(["playground", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
