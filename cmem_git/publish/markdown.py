"""The Markdown of an export: the HTML page's structure, for a Markdown viewer or an editor.

The same functions as page.py, so export.py writes either with the same calls. Markdown lets
raw HTML through, so transcript text is fenced in: prose goes in a blockquote (an unclosed code
fence in it ends with the quote, not with our document) with anything that could open a tag
escaped outside its code fences; code goes in a fence longer than any backtick run inside it, or
indented when it streams from a file. Thinking and tool calls are `<details>`, which GitHub and
most viewers fold.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Iterable
from typing import TextIO

from .blocks import Call, Compaction, Note, Said, Summary, Thinking
from .page import HIDDEN, parse_time

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def visible(value: str) -> str:
    """Hidden and reordering characters as a visible code (see page.HIDDEN)."""
    return HIDDEN.sub(lambda m: f"⟦U+{ord(m[0]):04X}⟧", value)


def inline(value: str) -> str:
    """Text inside our own HTML (a `<summary>`): escaped as HTML."""
    return visible(html.escape(" ".join(value.split()), quote=True))


def prose(value: str) -> str:
    """Claude's or the user's text, kept as the Markdown it is, inside a blockquote."""
    lines, fence = [], ""
    for line in visible(value).split("\n"):
        opened = _FENCE.match(line)
        if fence and opened and opened[1][0] == fence[0] and len(opened[1]) >= len(fence):
            fence = ""
        elif not fence and opened:
            fence = opened[1]
        elif not fence:
            line = _TAG_START.sub("&lt;", line)
        lines.append(("> " + line).rstrip())
    return "\n".join(lines) + "\n\n"


def code(value: str, info: str = "") -> str:
    runs = [len(r) for r in re.findall(r"`+", value)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}{info}\n{visible(value)}\n{fence}\n\n"


def local_time(stamp: str | None) -> str:
    when = parse_time(stamp)
    return f"{when.astimezone():%Y-%m-%d %H:%M:%S %Z}" if when else ""


def start(out: TextIO, title: str, back: str | None) -> None:
    if back:
        out.write(f"[All sessions]({back})\n\n")
    out.write(f"# {inline(title)}\n\n")


def finish(out: TextIO) -> None:
    pass


def open_main(out: TextIO) -> None:
    out.write("---\n\n")


def facts(out: TextIO, rows: Iterable[tuple[str, str]]) -> None:
    out.write("".join(f"- **{key}:** {value}\n" for key, value in rows) + "\n")


def section_open(out: TextIO, label: str) -> None:
    out.write(f"## {inline(label)}\n\n")


def section_close(out: TextIO) -> None:
    pass


def link(href: str, label: str) -> str:
    return f"[{inline(label).replace(']', '&#93;')}](<{href}>)"


def text(value: str) -> str:
    return inline(value)


# --- conversation blocks -------------------------------------------------------------------

def _heading(label: str, stamp: str | None) -> str:
    when = local_time(stamp)
    return f"#### {label}" + (f" · {when}" if when else "") + "\n\n"


def said(out: TextIO, block: Said) -> None:
    out.write(_heading(block.who.capitalize(), block.time)
              + prose(block.text))


def thinking(out: TextIO, block: Thinking) -> None:
    out.write(f"<details><summary>Thinking {local_time(block.time)}</summary>\n\n"
              f"{prose(block.text)}</details>\n\n")


def call_open(out: TextIO, call: Call) -> None:
    error = call.result is not None and call.result.error
    out.write(f"<details><summary><b>{inline(call.name)}</b> <code>{inline(call.summary)}"
              f"</code>{' (error)' if error else ''} {local_time(call.time)}</summary>\n\n")
    if call.input:
        out.write("**input**\n\n" + code(call.input))
    if call.result is None:
        out.write("_no result in the transcript_\n\n")
    else:
        out.write(f"**result** {local_time(call.result.time)}\n\n" + code(call.result.text))


def spilled(out: TextIO, name: str, size: str, data: Iterable[bytes]) -> None:
    """Indented rather than fenced: a file streamed in pieces cannot be searched for the
    longest backtick run first, and an indented block needs no closing line."""
    out.write(f"<details><summary>Full output: {inline(name)}, {size}</summary>\n\n")
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    rest = ""
    for piece in data:
        rest += decoder.decode(piece)
        head, _, rest = rest.rpartition("\n")
        if _:
            out.write("".join(f"    {visible(line)}\n" for line in head.split("\n")))
    rest += decoder.decode(b"", final=True)
    if rest:
        out.write(f"    {visible(rest)}\n")
    out.write("\n</details>\n\n")


def nest_open(out: TextIO, label: str) -> None:
    out.write(f"**{inline(label)}**\n\n")


def nest_close(out: TextIO) -> None:
    out.write("_(end of subagent)_\n\n")


def call_close(out: TextIO) -> None:
    out.write("</details>\n\n")


def compaction(out: TextIO, block: Compaction) -> None:
    tokens = f", {block.tokens:,} tokens before" if block.tokens else ""
    out.write(f"---\n\n**── Compaction ({inline(block.trigger)}{tokens}) "
              f"{local_time(block.time)} ──** Claude's context was replaced here: what is "
              "above left it; Claude went on from the summary below.\n\n---\n\n")


def summary(out: TextIO, block: Summary) -> None:
    out.write(f"<details><summary><b>Summary</b> Claude continued from "
              f"{local_time(block.time)}</summary>\n\n{prose(block.text)}</details>\n\n")


def note(out: TextIO, block: Note) -> None:
    out.write(f"_{inline(block.text)}_ {local_time(block.time)}\n\n")


def checkpoint(out: TextIO, anchor: str, label: str) -> None:
    out.write(f'<a id="{html.escape(anchor)}"></a>_{inline(label)}_\n\n')
