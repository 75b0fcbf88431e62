"""The HTML of an export: one self-contained file per page, opened from disk.

Everything a page needs is inside it: inline CSS and a few lines of script, no fonts, images or
other URLs, and a Content-Security-Policy that allows exactly that style and that script (by
hash) and nothing else, so even a string that escaped our escaping could load or run nothing.
Every transcript string goes through `text`: HTML-escaped, and characters that hide or reorder
what a reader sees (bidi overrides, other controls, lone surrogates) shown as visible codes.

Thinking, tool calls and subagents are `<details>`, closed: the conversation reads first, detail
opens on demand. Print opens them all (the script, on `beforeprint`).
"""

from __future__ import annotations

import base64
import codecs
import datetime as dt
import hashlib
import html
import re
from collections.abc import Iterable
from typing import TextIO

from .blocks import Call, Compaction, Note, Said, Summary, Thinking

STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--user:#ddf4ff;--claude:#f6f8fa;--tool:#fff8e1;--err:#ffebe9;--accent:#0969da;--think:#fbefff}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--user:#0c2d6b;--claude:#151b23;--tool:#2b2716;--err:#4a1c1f;--accent:#4493f8;
--think:#2a1d3d}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:62rem;padding:.75rem;background:var(--bg);color:var(--fg);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
a{color:var(--accent)}
h1{font-size:1.35rem;margin:.25rem 0 .5rem;overflow-wrap:anywhere}
h2{font-size:1.05rem;margin:.75rem 0 .25rem;overflow-wrap:anywhere}
.part{border-top:1px solid var(--line)}
pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre,.text{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .75rem;margin:0 0 .5rem}
.facts dt{color:var(--muted)}.facts dd{margin:0;overflow-wrap:anywhere}
.msg{border:1px solid var(--line);border-radius:8px;padding:.5rem .75rem;margin:.6rem 0}
.user{background:var(--user)}.claude{background:var(--claude)}
.who{font-size:.8rem;color:var(--muted);margin-bottom:.2rem}
details{border:1px solid var(--line);border-radius:8px;margin:.4rem 0;padding:0 .6rem}
details[open]{padding-bottom:.5rem}
summary{cursor:pointer;padding:.3rem 0;overflow-wrap:anywhere}
summary code{color:var(--muted)}
.thinking{background:var(--think)}.tool{background:var(--tool)}
.label{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
margin:.4rem 0 .1rem}
.error>summary,.error .result{background:var(--err)}
.subagent{border-left:3px solid var(--accent);padding-left:.6rem;margin:.5rem 0}
.compaction{border-top:3px double var(--accent);border-bottom:3px double var(--accent);
margin:1rem 0;padding:.4rem 0;text-align:center}
.note{color:var(--muted);font-size:.85rem}
.checkpoint{color:var(--muted);font-size:.8rem;border-top:1px dashed var(--line);margin:.5rem 0;
padding-top:.1rem}
.ctl{border:1px solid currentColor;border-radius:3px;font-size:.7em;padding:0 .15em}
time{color:var(--muted);font-size:.8rem}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid var(--line);padding:.3rem .4rem;text-align:left;vertical-align:top}
td{overflow-wrap:anywhere}
.tools{display:none}.js .tools{display:block;margin:.5rem 0}
@media (max-width:40rem){body{padding:.4rem;font-size:14px}
.wide{display:none}}
@media print{body{max-width:none;background:#fff;color:#000}.tools{display:none!important}
details,.msg{break-inside:avoid-page}details::details-content{content-visibility:visible}}
"""

SCRIPT = """
document.documentElement.classList.add("js");
function all(open){for(const d of document.querySelectorAll("details"))d.open=open;}
addEventListener("beforeprint",()=>all(true));
for(const b of document.querySelectorAll("[data-open]"))
b.addEventListener("click",()=>all(b.dataset.open==="1"));
"""

# Characters that hide, reorder or fake what a reader sees: C0/C1 controls (not tab and
# newlines), bidi embeddings, overrides and isolates, and lone surrogates (which cannot even be
# written as UTF-8).
HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")


def _sha(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


POLICY = (f"default-src 'none'; style-src {_sha(STYLE)}; script-src {_sha(SCRIPT)}; "
          "img-src 'none'; base-uri 'none'; form-action 'none'")


def text(value: str) -> str:
    """A transcript string as HTML text: nothing in it can become markup or hide itself."""
    return HIDDEN.sub(_visible, html.escape(value, quote=True))


def attribute(value: str) -> str:
    """A transcript string inside an attribute value: escaped, hidden characters as `?`
    (markup, as `text` makes of them, has no place inside a quoted value)."""
    return HIDDEN.sub("?", html.escape(value, quote=True))


def _visible(match: re.Match[str]) -> str:
    return f'<span class="ctl" title="hidden character">U+{ord(match[0]):04X}</span>'


def local_time(stamp: str | None) -> str:
    """`<time>` in the exporting machine's local time, the UTC instant in `datetime`."""
    when = parse_time(stamp)
    if when is None:
        return ""
    return (f'<time datetime="{when.astimezone(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}">'
            f"{when.astimezone():%Y-%m-%d %H:%M:%S %Z}</time>")


def parse_time(stamp: str | None) -> dt.datetime | None:
    if not stamp:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def start(out: TextIO, title: str, back: str | None) -> None:
    out.write('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
              f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">\n'
              '<meta name="referrer" content="no-referrer">\n'
              '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
              '<meta name="color-scheme" content="light dark">\n'
              f"<title>{text(title)}</title>\n<style>{STYLE}</style></head>\n<body>\n")
    if back:
        out.write(f'<nav><a href="{html.escape(back)}">All sessions</a></nav>\n')
    out.write(f"<h1>{text(title)}</h1>\n")


def finish(out: TextIO) -> None:
    out.write(f"</main>\n<script>{SCRIPT}</script>\n</body></html>\n")


def open_main(out: TextIO) -> None:
    out.write('<div class="tools"><button type="button" data-open="1">Open all</button> '
              '<button type="button" data-open="0">Close all</button></div>\n<main>\n')


def facts(out: TextIO, rows: Iterable[tuple[str, str]]) -> None:
    """A definition list; values are HTML already (built with `text` and `link`)."""
    out.write('<dl class="facts">' + "".join(f"<dt>{text(k)}</dt><dd>{v}</dd>" for k, v in rows)
              + "</dl>\n")


def section_open(out: TextIO, label: str) -> None:
    out.write(f'<section class="part"><h2>{text(label)}</h2>\n')


def section_close(out: TextIO) -> None:
    out.write("</section>\n")


def link(href: str, label: str) -> str:
    return f'<a href="{html.escape(href)}">{text(label)}</a>'


# --- conversation blocks -------------------------------------------------------------------

def said(out: TextIO, block: Said) -> None:
    who = block.who.capitalize()
    out.write(f'<section class="msg {block.who}"><div class="who">{who} '
              f'{local_time(block.time)}</div><div class="text">{text(block.text)}</div>'
              "</section>\n")


def thinking(out: TextIO, block: Thinking) -> None:
    out.write(f'<details class="thinking"><summary>Thinking {local_time(block.time)}</summary>'
              f'<div class="text">{text(block.text)}</div></details>\n')


def call_open(out: TextIO, call: Call) -> None:
    error = call.result is not None and call.result.error
    kind = "tool error" if error else "tool"
    out.write(f'<details class="{kind}" id="tool-{attribute(call.id)}" '
              f'data-tool="{attribute(call.name)}"><summary><b>{text(call.name)}</b> '
              f"<code>{text(call.summary)}</code>{' (error)' if error else ''} "
              f"{local_time(call.time)}</summary>\n")
    if call.input:
        out.write(f'<div class="label">input</div><pre>{text(call.input)}</pre>\n')
    if call.result is None:
        out.write('<div class="note">no result in the transcript</div>\n')
    else:
        out.write(f'<div class="label">result {local_time(call.result.time)}</div>'
                  f'<pre class="result">{text(call.result.text)}</pre>\n')


def spilled(out: TextIO, name: str, size: str, data: Iterable[bytes]) -> None:
    """A tool result Claude Code kept in a file of its own, inlined, closed until opened."""
    out.write(f'<details class="spilled"><summary>Full output: {text(name)}, {size}</summary>'
              "<pre>")
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    for piece in data:
        out.write(text(decoder.decode(piece)))
    out.write(text(decoder.decode(b"", final=True)) + "</pre></details>\n")


def nest_open(out: TextIO, label: str) -> None:
    out.write(f'<section class="subagent"><div class="label">{text(label)}</div>\n')


def nest_close(out: TextIO) -> None:
    out.write("</section>\n")


def call_close(out: TextIO) -> None:
    out.write("</details>\n")


def compaction(out: TextIO, block: Compaction) -> None:
    tokens = f", {block.tokens:,} tokens before" if block.tokens else ""
    out.write(f'<div class="compaction" role="separator"><strong>Compaction</strong> '
              f"({text(block.trigger)}{tokens}) {local_time(block.time)}<br>"
              "Claude's context was replaced here: what is above left it; Claude went on from "
              "the summary below.</div>\n")


def summary(out: TextIO, block: Summary) -> None:
    out.write(f'<details class="summary"><summary><strong>Summary</strong> Claude continued '
              f'from {local_time(block.time)}</summary><div class="text">{text(block.text)}'
              "</div></details>\n")


def note(out: TextIO, block: Note) -> None:
    out.write(f'<div class="note">{text(block.text)} {local_time(block.time)}</div>\n')


def checkpoint(out: TextIO, anchor: str, label: str) -> None:
    out.write(f'<div class="checkpoint" id="{html.escape(anchor)}">{text(label)}</div>\n')
