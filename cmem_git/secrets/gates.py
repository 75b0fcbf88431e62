"""The pre-filter: a handful of gate patterns that run once over a whole chunk, and the rules
each gate guards (see redact.py, "Why a pre-filter"). Every rule has a gate that fires on the
raw JSON bytes of anything the rule can match; change the two together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from .jsonstr import _RECORD, Hit
from .secret_rules import RULE_SOURCES, Rule, compiled

# --- Gates: the pre-filter over raw bytes -------------------------------------------------------

# After a keyword, in the raw JSON bytes (lowercased): a name's tail and an operator, inside a
# string (`password=`, `token: `, `\"secret\": `) or as a record's own key (`"password":"`), then
# the start of a value the rules could accept: quoted, right after `=` (.env), or holding a
# character other than letters, `_` and `-` (`tool_id`, `thread_key` are code, not secrets) ...
_G_VALUE = (rb"""(?:\\*["'`]|(?=[^\s"'`\\,;<>]{4})"""
            rb"""(?:[a-z_-]{0,255}[^a-z_\-\s"'`\\,;<>]|[a-z_-]{20}))""")
_G_ASSIGN = (rb"""[a-z0-9_.-]{0,40}(?:"[ \t]*:[ \t]*"|=(?:\\*["'])?[^\s"'`\\]{3}"""
             rb"""|(?:\\+["'`]|['`])?(?:[ \t]|\\t)*(?::=|=>|[:=])(?:[ \t]|\\t)*"""
             + _G_VALUE + rb")")
# ... or a short gap and 20 token characters (high-entropy); `"` and `\` are escaped in raw bytes.
_G_GAP = rb"""s?(?:[ "'`:=>(\[{,\\]{1,12}|[ ]+is:?[ ]+)[a-z0-9+/_=.-]{20}"""
_G_KEYWORD = rb"(?:" + _G_ASSIGN + rb"|" + _G_GAP + rb")"
_ASSIGNED = ("env-secret", "high-entropy", "url-query-token")
_CLI_FLAG = rb"(?=[^\n]{0,240}?(?:-p|--password))"


@dataclass(frozen=True)
class _Gate:
    pattern: re.Pattern[bytes]
    lower: bool  # run over the ASCII-lowercased bytes
    kinds: tuple[tuple[str, ...], ...]  # per capture group (the branch that fired): the rules
    # whose matches can hold such a hit; a gate without groups has one kind


def _gate(source: bytes, lower: bool, *kinds: tuple[str, ...]) -> _Gate:
    return _Gate(re.compile(source), lower, kinds)


# Each gate starts with a literal byte, which `re` scans for quickly, and each branch after it
# with a literal too, which `re` dispatches on quickly. A gate may consume only bytes that cannot
# hold its own first byte, and looks at the rest: one hit must never hide the next (`key=sk-…`).
_GATES = (
    _gate(rb"w(?:(?:ord(?<=password)|d(?<=passwd)|d(?<=pwd))()(?=" + _G_KEYWORD + rb")"
          rb"|ilio()(?<=twilio))",
          True, ("password-assignment",) + _ASSIGNED, ("twilio-key",)),
    _gate(rb"k(?:e(?:n()(?<=token)(?=" + _G_KEYWORD + rb")|y()(?=" + _G_KEYWORD + rb"))"
          rb"|u()(?<=heroku)|-()(?<=sk-)(?=[a-z0-9_-]{20})|\.com/()(?<=hooks\.slack\.com/)"
          rb"|s/()(?<=webhooks/))",
          True, ("token-assignment", "aws-session-token") + _ASSIGNED,
          ("api-key-assignment", "aws-secret-key", "azure-storage-key", "datadog-api-key")
          + _ASSIGNED, ("heroku-api-key",), ("anthropic-key", "openai-key"), ("slack-webhook",),
          ("discord-webhook",)),
    _gate(rb"cr(?:et(?<=secret)|edential)(?=" + _G_KEYWORD + rb")",
          True, ("secret-assignment", "aws-secret-key") + _ASSIGNED),
    _gate(rb"z(?:ation()(?<=authorization)(?=(?:[\\\"'` :=>]|\\t){1,16}(?:bearer|token|basic))"
          rb"|a()(?<=aiza)(?=[0-9a-z_-]{35}))",
          True, ("authorization-header", "basic-auth"), ("google-api-key",)),
    _gate(rb"_(?=[a-z0-9]{16})(?:(?<=gh[pousr]_)()|(?<=github_pat_)()|(?<=npm_)()|(?<=hf_)()"
          rb"|(?<=shp(?:at|ca|pa|ss)_)()|(?<=do[por]_v1_)()|(?<=[sr]k_(?:live|test)_)()"
          rb"|(?<=whsec_)()|(?<=lin_api_)())",
          True, ("github-token",), ("github-pat",), ("npm-token",), ("huggingface-token",),
          ("shopify-token",), ("digitalocean-token",), ("stripe-key",), ("stripe-webhook-secret",),
          ("linear-api-key",)),
    _gate(rb"-(?<=[tbaposriuky]-)(?:(?<=glpat-)()|(?<=glptt-)()|(?<=glrt-)()"
          rb"|(?<=xox[abposr]-)()|(?<=xapp-)()|(?<=pypi-)()|(?<=hrku-)()"
          rb"|(?<=age-secret-key-)(?=1)()|(?<=key-)(?=[0-9a-f]{32})()|(?<=pmak-)())",
          True, ("gitlab-token",), ("gitlab-token",), ("gitlab-token",), ("slack-token",),
          ("slack-app-token",), ("pypi-token",), ("heroku-api-key",), ("age-secret-key",),
          ("mailgun-key",), ("postman-key",)),
    _gate(rb":AA(?<=[0-9]{8}:AA)(?=[A-Za-z0-9_-]{33})", False, ("telegram-bot-token",)),
    _gate(rb"\.(?<=hv[sb]\.)(?=[A-Za-z0-9_-]{24})", False, ("vault-token",)),
    # The command, then its flag within the line. (Starting at the flag instead is cheaper on
    # real transcripts but costs a 232-byte look-back per `-p`: ~800x a benign MiB on a MiB
    # of `x -p x -p`, past test_redact_linear's bound.) One gate per first letter: `re` scans
    # for a literal quickly, not for an alternation (one gate of the four words took half of
    # all the gates' time, 10 ms per MiB).
    *(_gate(command + _CLI_FLAG, True, ("cli-password",))
      for command in (rb"m(?:ysql|ariadb)", rb"sshpass", rb"login")),
    # `?access_token=`, `&key=` are found by the keyword gates above; these two are not.
    _gate(rb"=(?:(?<=[?&]sig=)|(?<=signature=))", True, ("url-query-token",)),
    _gate(rb"""://(?=[^\s/@"\\]{0,400}@)""",
          False, ("database-password", "url-password", "url-token")),
    _gate(rb"IA(?<=A[KS]IA)(?=[0-9A-Z]{16})", False, ("aws-access-key",)),
    _gate(rb"J(?<=eyJ)(?=[A-Za-z0-9_-]{8})", False, ("jwt",)),
    _gate(rb"G(?:\.()(?<=SG\.)(?=[A-Za-z0-9_-]{22}\.)|IN()(?<=-----BEGIN)|OCSPX-())",
          False, ("sendgrid-key",), ("private-key",), ("google-client-secret",)),
)
# Every kind of hit, numbered: a hit is (offset, kind); kinds past these are the extra rules.
_KINDS = tuple(kind for gate in _GATES for kind in gate.kinds)
_FIRST_KIND = tuple(sum(len(g.kinds) for g in _GATES[:i]) for i in range(len(_GATES)))


def _gate_hits(data: bytes) -> list[Hit]:
    lower = data.lower()  # ASCII only, so offsets stay the same
    hits: list[Hit] = []
    for first, gate in zip(_FIRST_KIND, _GATES):
        hits += [(m.start(), first + (m.lastindex or 1) - 1)
                 for m in gate.pattern.finditer(lower if gate.lower else data)]
    return hits


@cache
def _guarded(kind: int) -> tuple[tuple[int, Rule], ...]:
    """The built-in rules, with their priority, whose matches a hit of this kind may lie in."""
    return tuple((i, compiled(i)) for i, (name, _, _) in enumerate(RULE_SOURCES)
                 if name in _KINDS[kind])


# --- Finding rule matches near a hit --------------------------------------------------------------

_GLOBAL_FLAGS = re.compile(r"\A\(\?[aiLmsux]+\)")


@cache
def _locator(pattern: re.Pattern[str], back: int) -> re.Pattern[str]:
    """Matches up to the first place within `back` characters where `pattern` can start. A
    look-ahead adds no group, so the rule's own groups (and back-references) keep their numbers."""
    body = _GLOBAL_FLAGS.sub("", pattern.pattern)
    return re.compile(rf"[\s\S]{{0,{back}}}?(?={body})", pattern.flags)


def _near(rule: Rule, text: str, hit: int, reach: dict[int, int] | None = None,
          priority: int = 0) -> Iterator[re.Match[str]]:
    """The matches of `rule` in `text` that start at most its look-back before `hit`. Only the
    start is bounded: a match runs on as far as the rule lets it (a key block, a long token).

    `reach` (per rule priority, for hits in ascending order) is how far starts were already
    tried for earlier hits (the caller moves it past a match it keeps): a start before it is
    not tried again. Dense hits (`sk-sk-sk-…`, `token: token: …`, many key headers) would
    otherwise each try the same starts, so the cost grew with hits × look-back."""
    back = rule.back
    tried = reach.get(priority, 0) if reach is not None else 0
    pos = max(0, hit - back, tried)
    while pos <= hit:
        located = _locator(rule.pattern, back).match(text, pos)
        found = None if located is None or located.end() > hit else \
            rule.pattern.match(text, located.end())
        if located is None or found is None:
            break
        pos = max(found.end(), located.end() + 1)
        if reach is not None:
            reach[priority] = located.end() + 1
        yield found
    if reach is not None:
        reach[priority] = max(reach.get(priority, 0), hit + 1)


# --- Lines and strings ----------------------------------------------------------------------------

_PEM_REACH = 33000  # past the longest key block the rule takes (_PEM_BODY)


def _region_end(data: bytes, start: int, hit: int) -> int:
    """Where the text looked at for a hit ends: its line's end; for a key block in plain text
    (not a JSON record, whose strings hold their line breaks as escapes) the end of its
    footer's line, or of the line the longest body would reach when there is no footer."""
    end = data.find(b"\n", hit)
    end = len(data) if end < 0 else end
    if _RECORD.match(data, start) or data.find(b"PRIVATE KEY", hit, end) < 0:
        return end
    footer = data.find(b"-----END", hit, hit + _PEM_REACH)
    stop = data.find(b"\n", footer if footer >= 0 else min(len(data), hit + _PEM_REACH))
    return len(data) if stop < 0 else stop


def _past(reach: dict[int, int], priority: int, m: re.Match[str]) -> bool:
    """Moves `reach` past a match that counts: a later hit inside it would find only a part of
    it, which overlaps it and loses to it anyway."""
    reach[priority] = max(reach[priority], m.end())
    return True
