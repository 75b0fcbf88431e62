"""Records read as a conversation (blocks.py): tool calls joined to their results in
the orders Claude Code writes them, and never more than a bounded number waiting."""

from __future__ import annotations

import json
from typing import Any

from cmem_git.publish import blocks
from cmem_git.publish.blocks import Call, Line, Note, Said


def line(kind: str, content: Any, **fields: Any) -> bytes:
    return json.dumps({"type": kind, "message": {"role": kind, "content": content},
                       **fields}).encode()


def use(tool_id: str, size: int = 1) -> bytes:
    return line("assistant", [{"type": "tool_use", "id": tool_id, "name": "Bash",
                               "input": {"command": "x" * size}}])


def result(tool_id: str, text: str = "ok") -> bytes:
    return line("user", [{"type": "tool_result", "tool_use_id": tool_id, "content": text}])


def shown(records: list[bytes]) -> list[tuple[str, str]]:
    """(what, detail) of each block a page would show."""
    out = []
    for block in blocks.paired(blocks.blocks(records)):
        if isinstance(block, Call):
            out.append(("call", f"{block.id}={block.result.text if block.result else None}"))
        elif isinstance(block, Said):
            out.append((block.who, block.text))
        elif isinstance(block, Note):
            out.append(("note", block.text))
        elif not isinstance(block, Line):
            out.append((type(block).__name__, ""))
    return out


def test_parallel_calls_answered_out_of_order_keep_their_order() -> None:
    records = [use("a"), use("b"), use("c"), result("c", "C"), result("a", "A"),
               result("b", "B"), line("assistant", [{"type": "text", "text": "done"}])]
    assert shown(records) == [("call", "a=A"), ("call", "b=B"), ("call", "c=C"),
                              ("claude", "done")]


def test_a_call_without_result_is_written_when_the_conversation_goes_on() -> None:
    records = [use("a"), line("user", "next prompt"), result("a")]
    assert shown(records) == [("call", "a=None"), ("user", "next prompt"),
                              ("call", "a=ok")]


def test_placeholders_do_not_part_a_call_from_its_result() -> None:
    records = [use("a"), b"{broken", result("a")]
    assert shown(records) == [("note", "[invalid JSON line, 7 bytes]"), ("call", "a=ok")]


def test_the_same_id_twice_loses_no_call() -> None:
    records = [use("a"), use("a"), result("a")]
    assert shown(records) == [("call", "a=None"), ("call", "a=ok")]


def test_calls_waiting_are_bounded() -> None:
    big = blocks.PENDING_LIMIT // 3
    records = [use(str(n), big) for n in range(10)]
    waiting_at_most = 0
    source = blocks.blocks(records)
    seen = 0
    for block in blocks.paired(source):
        if isinstance(block, Call):
            seen += 1
        elif isinstance(block, Line):
            waiting_at_most = max(waiting_at_most, block.number - 1 - seen)
    assert seen == 10 and waiting_at_most <= 4


def test_outline_prefers_a_title_record_then_a_slash_command() -> None:
    command = line("user", "<command-message>x</command-message>\n<command-name>/review"
                   "</command-name>\n<command-args>the PR</command-args>")
    assert blocks.outline(command, b"").title == "/review the PR"
    titled = json.dumps({"type": "ai-title", "aiTitle": "Fix the build"}).encode()
    assert blocks.outline(command, titled).title == "Fix the build"
