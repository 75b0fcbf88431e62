"""Rendering records for a person: never fails, shows what it does not know as a short
placeholder, leaves bookkeeping out, hides thinking unless asked."""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS, corpus_transcripts

from cmem_git.read import render

SHORT_PLACEHOLDER = 200  # characters: a placeholder is a hint, not the data


def line(value: object) -> bytes:
    return json.dumps(value).encode()


def test_every_line_of_every_corpus_file_renders() -> None:
    files = corpus_transcripts()
    assert len(files) == 7
    kinds = set()
    for path in files:
        for number, raw in enumerate(path.read_bytes().splitlines(), 1):
            for thinking in (False, True):
                text = render.record(raw, thinking)
                assert text is None or isinstance(text, str), (path.name, number)
            text = render.record(raw)
            if text is not None:
                assert text.strip(), (path.name, number)
                assert "[invalid JSON line" not in text, (path.name, number)
            kinds.add(json.loads(raw).get("type"))
    assert {"user", "assistant", "system", "progress", "summary"} <= kinds


def test_corpus_records_read_as_a_conversation() -> None:
    short = (CORPUS / "spotter" / "short.jsonl").read_bytes().splitlines()
    rendered = [render.record(raw) for raw in short]
    texts = [t for t in rendered if t]
    assert any(t.startswith("**User:** ") for t in texts)
    assert any(t.startswith("**Claude:** ") for t in texts)
    assert any(t.startswith("→ ") and "(" in t for t in texts)  # a tool call, one line
    assert not any("_(thinking)_" in t for t in texts)
    with_thinking = [render.record(raw, thinking=True) for raw in short]
    assert any(t and "_(thinking)_" in t for t in with_thinking)
    # bookkeeping (file-history-snapshot, progress) is left out
    for raw, text in zip(short, rendered):
        if json.loads(raw)["type"] in ("file-history-snapshot", "progress"):
            assert text is None


def test_compaction_is_marked_and_the_summary_not_repeated() -> None:
    path = next(CORPUS.glob("spotter/*.EXCERPT-compact.jsonl"))
    texts = [render.record(raw) for raw in path.read_bytes().splitlines()]
    assert "──── compaction (auto) ────" in texts
    assert "[compaction summary for the next context]" in texts


@pytest.mark.parametrize("raw, expected", [
    # unknown record types: kept as a placeholder, or left out when known bookkeeping
    (line({"type": "brand-new-kind", "uuid": "x"}), "[brand-new-kind record]"),
    (line({"type": "ai-title", "title": "t"}), None),
    (line({"type": "custom-title", "customTitle": "t"}), None),
    (line({"type": "attachment", "attachment": {}}), None),
    (line({"type": "last-prompt", "lastPrompt": "p"}), None),
    # missing fields
    (line({}), "[untyped record]"),
    (line({"type": "user"}), "[user record without content]"),
    (line({"type": "assistant", "message": {}}), "[assistant record without content]"),
    (line({"type": "system"}), "[system: None]"),
    (line({"type": "system", "subtype": "compact_boundary"}), "──── compaction (?) ────"),
    (line({"type": "summary"}), "[summary: ]"),
    # non-string content
    (line({"type": "user", "message": {"content": 42}}), "[user record without content]"),
    (line({"type": "user", "message": "just text"}), "[user record without content]"),
    (line({"type": "user", "message": {"content": [1, None]}}),
     "[int content]\n[NoneType content]"),
    (line({"type": "assistant", "message": {"content": [{"type": "mystery"}, {}]}}),
     "[mystery content]\n[unknown content]"),
    (line({"type": "user", "message": {"content": [{"type": "text", "text": 5}]}}),
     "**User:** 5"),
    (line({"type": "user", "message": {"content": [
        {"type": "tool_result", "content": [{"text": 3}, "x", None]}]}}), "  ↳ 3"),
    (line({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": None, "input": [1, 2]}]}}), "→ None([1, 2])"),
    (line({"type": "system", "subtype": "informational", "content": 1}), None),
    # invalid lines and JSON that is not an object
    (b"", "[invalid JSON line, 0 bytes]"),
    (b"{\"type\": \"user\", \"mess", "[invalid JSON line, 22 bytes]"),
    (b"\xff\xfe\x00", "[invalid JSON line, 3 bytes]"),
    (b"[1, 2]", "[not a record: [1, 2]]"),
    (b"null", "[not a record: null]"),
    (b"17", "[not a record: 17]"),
    (b'"text"', '[not a record: "text"]'),
])
def test_odd_records_show_as_placeholders(raw: bytes, expected: str | None) -> None:
    assert render.record(raw) == expected
    assert render.record(raw, thinking=True) == expected


@pytest.mark.parametrize("raw", [
    line({"type": ["a", "list"]}),
    line({"type": {"nested": "object"}}),
    line({"type": 7}),
    line({"type": True}),
    line({"type": "system", "subtype": ["x"]}),
    line({"type": "system", "subtype": {"x": 1}, "content": {"y": 2}}),
    line({"type": "assistant", "message": {"content": [{"type": ["x"]}]}}),
    line({"type": "user", "message": {"content": [{"type": {"x": 1}}]}}),
    line({"type": "user", "isCompactSummary": [1], "message": None}),
])
def test_odd_field_types_show_as_placeholders(raw: bytes) -> None:
    text = render.record(raw)
    assert text is not None and text.startswith("[") and len(text) < SHORT_PLACEHOLDER


def test_deeply_nested_line_is_a_placeholder() -> None:
    """Past the JSON decoder's nesting limit: still a placeholder, not a RecursionError."""
    raw = b"[" * 100_000 + b"]" * 100_000
    text = render.record(raw)
    assert text is not None and len(text) < SHORT_PLACEHOLDER


HUGE = 2_000_000


@pytest.mark.parametrize("raw", [
    b"{" + b"x" * HUGE,  # invalid
    line(["y" * HUGE]),  # not an object
    line({"type": "z" * HUGE}),  # unknown type
    line({"type": "summary", "summary": "s" * HUGE}),
    line({"type": "system", "subtype": "other", "content": "c" * HUGE}),
    line({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": "Bash", "input": {"command": "echo " * HUGE}}]}}),
    line({"type": "user", "message": {"content": [
        {"type": "tool_result", "content": "r\n" * HUGE}]}}),
    line({"type": "assistant", "message": {"content": [{"type": "q" * HUGE}]}}),
    line({"type": "user", "message": {"content": [{"type": "q" * HUGE}]}}),
])
def test_huge_lines_stay_short(raw: bytes) -> None:
    text = render.record(raw)
    assert text is not None and len(text) < 2 * render.LINE_WIDTH * render.RESULT_LINES


def test_tool_results_are_shortened_and_errors_marked() -> None:
    lines = "\n".join(f"line {i}" for i in range(10))
    text = render.record(line({"type": "user", "message": {"content": [
        {"type": "tool_result", "content": lines, "is_error": True}]}}))
    assert text == "  ↳ error: line 0 / line 1 / line 2 … (+7 lines)"


def test_tool_call_input_on_one_line() -> None:
    text = render.record(line({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": "Read", "input": {"file_path": "/a/b.py", "limit": 5}},
        {"type": "tool_use", "name": "Bash", "input": {"command": "ls\n-la"}}]}}))
    assert text == "→ Read(/a/b.py)\n→ Bash(ls -la)"
