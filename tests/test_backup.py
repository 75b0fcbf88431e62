"""backup.py against real memory repositories and real Claude Code transcripts.

Each backup here goes the way a hook's does: `back_up` reads the file against the stored tree,
`Store.build_tree` puts its changes into a new root tree and `Store.commit` moves the branch.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import uuid
from collections import Counter
from pathlib import Path

import pygit2
import pytest
from conftest import CORPUS, corpus_transcripts, git
from hypothesis import given, settings
from hypothesis import strategies as st

from cmem_git.capture import backup
from cmem_git.capture.backup import FileBackup, Source, check_session_id, whole_lines
from cmem_git.errors import HookInputError
from cmem_git.git import chunks
from cmem_git.git.chunks import CHUNK_SIZE, Chunk
from cmem_git.git.repo import Draft
from cmem_git.git.trees import subtree
from cmem_git.repo.store import Store

MiB = 1024 * 1024
SPOTTER = CORPUS / "spotter"
SID = "4d5611e5-241a-462a-8d15-5122611a9569"  # the corpus session that ran subagents
SUBAGENTS = SPOTTER / SID / "subagents"
EXCERPT = SPOTTER / f"{SID}.EXCERPT-compact.jsonl"
NO_FINAL_NEWLINE = CORPUS / "claude-code-log" / "representative_messages.jsonl"
_UUID = re.compile(rb'"uuid":"[0-9a-f-]{36}"')


# --- helpers --------------------------------------------------------------------------------------

def records(data: bytes) -> int:
    """Lines as a reader counts them: a last line without its newline is one too."""
    return len(data.split(b"\n")) - 1 + (not data.endswith(b"\n") and data != b"")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.init(tmp_path / "mem")


@pytest.fixture
def claude(tmp_path: Path) -> Path:
    """A Claude Code project folder (~/.claude/projects/<encoded cwd>)."""
    folder = tmp_path / "claude" / "projects" / "-home-me-my-project"
    folder.mkdir(parents=True)
    return folder


def assert_only_in_objects(store: Store) -> None:
    """Transcripts are in git objects only: no working files, and git sees nothing missing."""
    assert not (store.workdir / backup.ROOT).exists()
    assert git(store.workdir, "status", "--porcelain") == ""
    assert git(store.workdir, "ls-files", "-t", backup.ROOT).splitlines() and all(
        line.startswith("S ") for line in git(store.workdir, "ls-files", "-t",
                                              backup.ROOT).splitlines())


def tip_tree(store: Store) -> pygit2.Tree | None:
    tip = store.tip()
    return tip.tree if tip is not None else None


def commit(store: Store, changes: dict[str, pygit2.Oid | None]) -> pygit2.Oid:
    def build(tip: pygit2.Commit | None) -> Draft:
        return Draft(store.build_tree(tip.tree if tip is not None else None, changes),
                     "test: back up\n")

    oid = store.commit(build)
    assert oid is not None
    return oid


def back_up(store: Store, *sources: Source, chunk_size: int = chunks.CHUNK_SIZE
            ) -> list[FileBackup | None]:
    """Back up files as one hook does: one commit for all that changed."""
    base = tip_tree(store)
    items = [backup.back_up(store.repo, base, source, chunk_size=chunk_size)
             for source in sources]
    changes: dict[str, pygit2.Oid | None] = {}
    for item in items:
        if item is not None:
            changes.update(item.changes)
    if changes:
        commit(store, changes)
    return items


def back_up_one(store: Store, source: Source, chunk_size: int = chunks.CHUNK_SIZE
                ) -> FileBackup | None:
    return back_up(store, source, chunk_size=chunk_size)[0]


def stored(store: Store, source: Source, tree: pygit2.Tree | None = None) -> list[Chunk]:
    base = tree if tree is not None else tip_tree(store)
    return chunks.listing(store.repo, subtree(base, source.stored))


def stored_bytes(store: Store, source: Source, tree: pygit2.Tree | None = None) -> bytes:
    return chunks.read_range(store.repo, stored(store, source, tree))


def main_source(claude: Path, data: bytes, session_id: str = "s1") -> Source:
    path = claude / f"{session_id}.jsonl"
    path.write_bytes(data)
    return backup.sources(session_id, path)[0]


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


def assert_chunked(store: Store, source: Source, expected: bytes) -> list[Chunk]:
    """The stored copy gives back `expected`, cut the way chunks.py promises."""
    listed = stored(store, source)
    assert chunks.read_range(store.repo, listed) == expected
    for chunk, following in zip(listed, listed[1:] + [None]):
        data = chunks.blob_data(store.repo, chunk.oid)
        end = following.offset if following is not None else len(expected)
        assert chunk.offset + len(data) == end, "chunks are contiguous"
        assert chunk.line == expected[:chunk.offset].count(b"\n")
        if following is not None:
            assert data.endswith(b"\n")
        assert len(data) <= CHUNK_SIZE or data.count(b"\n") <= 1
    return listed


def corpus_lines() -> list[bytes]:
    lines: list[bytes] = []
    for path in corpus_transcripts():
        lines += [line for line in path.read_bytes().splitlines(keepends=True)
                  if line.endswith(b"\n")]
    return lines


def big_transcript(size: int, rng: random.Random) -> bytes:
    """At least `size` bytes of real corpus records, each with a fresh uuid."""
    lines = corpus_lines()
    out: list[bytes] = []
    total = 0
    while total < size:
        fresh = str(uuid.UUID(int=rng.getrandbits(128))).encode()
        line = _UUID.sub(b'"uuid":"' + fresh + b'"', rng.choice(lines))
        out.append(line)
        total += len(line)
    return b"".join(out)


# --- every corpus transcript ----------------------------------------------------------------------

@pytest.mark.parametrize("path", corpus_transcripts(), ids=lambda p: p.name)
def test_every_corpus_transcript_is_stored_byte_for_byte(store: Store, claude: Path,
                                                         path: Path) -> None:
    data = path.read_bytes()
    source = main_source(claude, data)
    item = back_up_one(store, source)
    assert item is not None
    assert item.before == (0, 0) and not item.rewritten
    assert item.after == (len(data), records(data))
    assert_chunked(store, source, data)
    assert back_up_one(store, source) is None, "an unchanged file is not backed up again"
    assert_only_in_objects(store)


def test_a_session_with_subagents(store: Store, claude: Path) -> None:
    main = claude / f"{SID}.jsonl"
    shutil.copyfile(EXCERPT, main)
    shutil.copytree(SUBAGENTS, claude / SID / "subagents")
    sources = backup.sources(SID, main)
    assert [s.stored for s in sources] == [
        f"transcripts/{SID}/main.jsonl",
        f"transcripts/{SID}/subagents/agent-a2898e3.jsonl",
        f"transcripts/{SID}/subagents/agent-acompact-e1f845.jsonl"]
    items = back_up(store, *sources)
    assert all(item is not None for item in items)
    for source in sources:
        assert_chunked(store, source, source.path.read_bytes())
    assert len(stored(store, sources[1])) == 2, "the 290 KiB subagent needs two chunks"

    # a subagent grows: only its folder changes
    before = tip_tree(store)
    assert before is not None
    record = SUBAGENTS.joinpath("agent-a2898e3.jsonl").read_bytes().splitlines(True)[-1]
    old = stored(store, sources[1])
    append(sources[1].path, record)
    items = back_up(store, *sources)
    assert items[0] is None and items[2] is None
    check_growth(store, sources[1], old, items[1], sources[1].path.read_bytes())
    after = tip_tree(store)
    assert after is not None
    changed = {d.new_file.path for d in before.diff_to_tree(after).deltas}
    assert changed == {f"{sources[1].stored}/{stored(store, sources[1])[-1].name}"}


# --- stable boundaries ----------------------------------------------------------------------------

def check_growth(store: Store, source: Source, previous: list[Chunk],
                 item: FileBackup | None, expected: bytes) -> list[Chunk]:
    """After one backup of a grown file: earlier chunks kept, only the last one replaced and
    new ones appended, and the stored bytes are the file's whole lines."""
    now = assert_chunked(store, source, expected)
    if item is None:
        assert now == previous
        return now
    assert not item.rewritten
    assert item.after == (len(expected), records(expected))
    if not previous:
        assert item.before == (0, 0)
        return now
    kept = len(previous) - 1
    assert now[:kept] == previous[:kept], "an earlier chunk changed"
    assert now[kept].name == previous[-1].name, "the last chunk moved"
    assert item.before == chunks.stored_size(store.repo, previous)
    assert item.changes.keys() == {f"{source.stored}/{c.name}" for c in now[kept:]}, \
        "a backup writes only the last chunk and the new ones"
    assert all(oid is not None for oid in item.changes.values())
    return now


def test_a_growing_transcript_keeps_its_chunk_boundaries(store: Store, claude: Path) -> None:
    rng = random.Random(1)
    final = big_transcript(int(1.3 * MiB), rng)
    source = main_source(claude, b"")
    previous: list[Chunk] = []
    size = 0
    while size < len(final):
        step = rng.choice([rng.randint(1, 3000), rng.randint(50_000, 250_000)])
        append(source.path, final[size:size + step])
        size = min(size + step, len(final))
        item = back_up_one(store, source)
        previous = check_growth(store, source, previous, item, whole_lines(final[:size]))
    assert stored_bytes(store, source) == final
    assert len(previous) >= 5


@given(file=st.sampled_from(corpus_transcripts()), size=st.integers(200, 3000),
       steps=st.lists(st.integers(1, 6000), min_size=1, max_size=15))
@settings(max_examples=20, deadline=None)
def test_growth_in_any_steps_keeps_boundaries(tmp_path_factory: pytest.TempPathFactory,
                                              file: Path, size: int, steps: list[int]) -> None:
    """The same with small chunks, so that steps cross many boundaries and long lines."""
    folder = tmp_path_factory.mktemp("grow")
    store = Store.init(folder / "mem")
    final = whole_lines(file.read_bytes()[:30_000])  # up to ~150 chunks, checked out each time
    source = main_source(folder, b"")
    previous: list[Chunk] = []
    position = 0
    for step in steps + [len(final)]:
        append(source.path, final[position:position + step])
        position = min(position + step, len(final))
        item = back_up_one(store, source, chunk_size=size)
        expected = whole_lines(final[:position])
        listed = stored(store, source)
        assert chunks.read_range(store.repo, listed) == expected
        if item is None:
            assert listed == previous
            continue
        kept = max(len(previous) - 1, 0)
        assert not item.rewritten
        assert listed[:kept] == previous[:kept]
        assert item.changes.keys() == {f"{source.stored}/{c.name}" for c in listed[kept:]}
        assert all(len(chunks.blob_data(store.repo, c.oid)) <= size
                   or chunks.blob_data(store.repo, c.oid).count(b"\n") <= 1 for c in listed)
        assert all(chunks.blob_data(store.repo, c.oid).endswith(b"\n") for c in listed[:-1])
        previous = listed
    assert stored_bytes(store, source) == final


def loose_objects(store: Store) -> set[str]:
    folder = store.gitdir / "objects"
    return {d.name + f.name for d in folder.iterdir() if len(d.name) == 2 for f in d.iterdir()}


def test_an_append_writes_objects_only_for_the_changed_tail(store: Store, claude: Path) -> None:
    """Acceptance: a transcript that grows between two hooks; the second commit writes new
    objects only for the changed tail."""
    rng = random.Random(2)
    source = main_source(claude, big_transcript(int(1.2 * MiB), rng), session_id="big")
    back_up_one(store, source)
    first = store.tip()
    old = stored(store, source)
    assert len(old) >= 5
    more = big_transcript(300 * 1024, rng)
    # the appended records go partly into the old last chunk, partly into new chunks
    assert len(chunks.blob_data(store.repo, old[-1].oid)) + len(more.split(b"\n")[0]) < CHUNK_SIZE

    objects = loose_objects(store)
    append(source.path, more)
    item = back_up_one(store, source)
    second = store.tip()
    assert item is not None and first is not None and second is not None
    now = check_growth(store, source, old, item, source.path.read_bytes())
    tail = now[len(old) - 1:]
    assert len(tail) >= 2 and tail[0].oid != old[-1].oid

    new = loose_objects(store) - objects
    kinds = Counter(store.repo[oid].type_str for oid in new)
    # blobs: the rewritten last chunk and the new ones; trees: main.jsonl, big, transcripts, root
    assert kinds == Counter({"blob": len(tail), "tree": 4, "commit": 1})
    assert {oid for oid in new if store.repo[oid].type_str == "blob"} == {
        str(c.oid) for c in tail}

    listed = git(store.workdir, "rev-list", "--objects", str(second.id), f"^{first.id}")
    paths = {line.partition(" ")[2] for line in listed.splitlines() if line != str(second.id)}
    assert paths == {"", "transcripts", "transcripts/big", source.stored} | {
        f"{source.stored}/{c.name}" for c in tail}


# --- partial last line ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", corpus_transcripts(), ids=lambda p: p.name)
def test_a_half_written_line_waits_for_its_newline(store: Store, claude: Path,
                                                   path: Path) -> None:
    data = path.read_bytes()
    rng = random.Random(path.name)
    ends = sorted(rng.sample(range(1, len(data) - 2), 6))
    source = main_source(claude, b"")
    written = 0
    commits = []
    for end in ends + [len(data)]:
        append(source.path, data[written:end])
        written = end
        back_up_one(store, source)
        expected = whole_lines(data[:end])
        if end < len(data) and b"\n" not in data[end - 1:end + 1]:
            # a cut inside a corpus record (not just before its newline) is never a whole record
            assert expected == data[:data.rfind(b"\n", 0, end) + 1]
        assert_chunked(store, source, expected)
        commits.append(store.tip())
    assert stored_bytes(store, source) == data
    # history only ever grows: each commit's copy is a prefix of the next one's
    copies = [stored_bytes(store, source, c.tree) if c is not None else b"" for c in commits]
    assert all(b.startswith(a) for a, b in zip(copies, copies[1:]))


def test_half_written_then_completed_line(store: Store, claude: Path) -> None:
    data = (SPOTTER / "short.jsonl").read_bytes()
    lines = data.splitlines(keepends=True)
    head = b"".join(lines[:-1])
    half = lines[-1][:len(lines[-1]) // 2]
    source = main_source(claude, head + half)
    item = back_up_one(store, source)
    assert item is not None and item.after == (len(head), len(lines) - 1)
    assert stored_bytes(store, source) == head
    append(source.path, lines[-1][len(half):-1])  # all but the newline: now a whole record
    item = back_up_one(store, source)
    assert item is not None and item.before == (len(head), len(lines) - 1)
    assert stored_bytes(store, source) == data[:-1]
    append(source.path, b"\n")
    item = back_up_one(store, source)
    assert item is not None and item.after == (len(data), len(lines))
    assert_chunked(store, source, data)


def test_a_file_of_only_a_half_line_is_not_backed_up(store: Store, claude: Path) -> None:
    source = main_source(claude, b'{"type":"user","message":{"ro')
    assert back_up_one(store, source) is None
    assert store.tip() is None


def test_a_final_record_without_newline_is_committed(store: Store, claude: Path) -> None:
    data = NO_FINAL_NEWLINE.read_bytes()
    assert not data.endswith(b"\n")
    source = main_source(claude, data)
    item = back_up_one(store, source)
    assert item is not None and item.after == (len(data), records(data))
    assert stored_bytes(store, source) == data
    old = stored(store, source)
    # Claude Code goes on writing: the newline, then more records
    more = b"\n" + b"".join(data.splitlines(keepends=True)[:3])
    append(source.path, more)
    item = back_up_one(store, source)
    assert item is not None
    now = assert_chunked(store, source, data + more)
    assert [c.name for c in now] == [c.name for c in old] and now[0].oid != old[0].oid


def test_whole_lines() -> None:
    assert whole_lines(b"") == b""
    assert whole_lines(b"a\nb\n") == b"a\nb\n"
    assert whole_lines(b'{"a":1}\n{"b":') == b'{"a":1}\n'
    assert whole_lines(b'{"a":1}\n{"b":2}') == b'{"a":1}\n{"b":2}'
    assert whole_lines(b'{"a":1}\n{"b":2} \r') == b'{"a":1}\n{"b":2} \r'
    assert whole_lines(b"x\n123") == b"x\n", "a number may go on: only an object is a record"
    assert whole_lines(b'x\n["a"]') == b"x\n"
    assert whole_lines(b"x\nnot json") == b"x\n"
    assert whole_lines(b'x\n{"a":"\xff"}') == b"x\n"


def test_whole_lines_survives_a_deeply_nested_half_line() -> None:
    """A half-written line can be anything; classifying it must not raise (json.loads raises
    RecursionError, not ValueError, on deep nesting)."""
    assert whole_lines(b'{"a":1}\n' + b"[" * 100_000) == b'{"a":1}\n'


# --- bytes that are not JSON or not UTF-8 ---------------------------------------------------------

def test_invalid_json_and_non_utf8_lines_are_kept_byte_exact(store: Store, claude: Path) -> None:
    lines = (SPOTTER / "tool_heavy.jsonl").read_bytes().splitlines(keepends=True)
    odd = [b"this is not json {\n", b"\xff\xfe\x00 binary \x80\x81\n", b'{"truncated": \n',
           b"\n", b"\r\n", b'{"crlf":true}\r\n', b'{"text":"caf\xc3\xa9 \xe2\x9c\x93"}\n',
           b'{"latin1":"caf\xe9"}\n', b"\x00" * 10 + b"\n"]
    mixed = lines[:5] + odd + lines[5:20] + odd[::-1] + lines[20:]
    data = b"".join(mixed)
    source = main_source(claude, data[:len(data) // 2])
    back_up_one(store, source)
    append(source.path, data[len(data) // 2:])
    back_up_one(store, source)
    assert_chunked(store, source, data)
    assert_only_in_objects(store)


def test_tool_results_are_taken_whole(store: Store, claude: Path) -> None:
    main = claude / "s1.jsonl"
    main.write_bytes((SPOTTER / "short.jsonl").read_bytes())
    folder = claude / "s1" / "tool-results"
    folder.mkdir(parents=True)
    text = folder / "toolu_01ABC.txt"
    text.write_bytes(b"line one\nno newline at the end")
    image = folder / "toolu_02.png"
    image.write_bytes(bytes(range(256)) * 50)
    sources = backup.sources("s1", main)
    assert [s.stored for s in sources[1:]] == ["transcripts/s1/tool-results/toolu_01ABC.txt",
                                               "transcripts/s1/tool-results/toolu_02.png"]
    back_up(store, *sources)
    assert stored_bytes(store, sources[1]) == text.read_bytes()
    assert stored_bytes(store, sources[2]) == image.read_bytes()


# --- older reads and rewritten files --------------------------------------------------------------

def prefixes(data: bytes) -> dict[str, bytes]:
    lines = data.splitlines(keepends=True)
    middle = len(lines) // 2
    return {
        "empty": b"",
        "first line": lines[0],
        "line boundary": b"".join(lines[:middle]),
        "mid line": b"".join(lines[:middle]) + lines[middle][:100],
        "all but the last line": b"".join(lines[:-1]),
        "all but the final newline": data[:-1],
        "one byte short of a chunk": data[:CHUNK_SIZE - 1],
    }


@pytest.mark.parametrize("name", list(prefixes(b"a\nb\nc\n")))
def test_an_older_read_never_replaces_what_is_stored(store: Store, claude: Path,
                                                     name: str) -> None:
    data = (SUBAGENTS / "agent-a2898e3.jsonl").read_bytes()
    source = main_source(claude, data)
    back_up_one(store, source)
    tip = store.tip()
    assert len(stored(store, source)) == 2
    source.path.write_bytes(prefixes(data)[name])
    assert backup.back_up(store.repo, tip_tree(store), source) is None
    assert back_up_one(store, source) is None
    assert store.tip() == tip and stored_bytes(store, source) == data


def test_a_rewritten_file_is_stored_as_its_new_version(store: Store, claude: Path) -> None:
    old = (SUBAGENTS / "agent-a2898e3.jsonl").read_bytes()
    new = (SPOTTER / "short.jsonl").read_bytes()
    source = main_source(claude, old)
    back_up_one(store, source)
    first = store.tip()
    old_chunks = stored(store, source)
    assert len(old_chunks) == 2
    source.path.write_bytes(new)
    item = back_up_one(store, source)
    assert item is not None and item.rewritten
    assert item.before == (len(old), records(old))
    assert item.after == (len(new), records(new))
    assert item.changes[f"{source.stored}/{old_chunks[1].name}"] is None
    now = assert_chunked(store, source, new)
    assert [c.name for c in now] == [old_chunks[0].name], "the chunk past the new end is gone"
    assert first is not None and stored_bytes(store, source, first.tree) == old, \
        "history keeps the old version"


@pytest.mark.parametrize("how", ["first record changed, longer", "first record changed, shorter",
                                 "same length", "middle changed, shorter"])
def test_rewrites_that_keep_the_size_or_grow(store: Store, claude: Path, how: str) -> None:
    rng = random.Random(3)
    old = big_transcript(700 * 1024, rng)
    lines = old.splitlines(keepends=True)
    renamed = lines[0].replace(b'"', b"'", 1)  # same length, other first bytes
    new = {"first record changed, longer": renamed + b"".join(lines[1:]) + lines[1],
           "first record changed, shorter": renamed + b"".join(lines[1:-40]),
           "same length": renamed + b"".join(lines[1:]),
           "middle changed, shorter": b"".join(lines[:30] + lines[31:])}[how]
    source = main_source(claude, old)
    back_up_one(store, source)
    old_names = {c.name for c in stored(store, source)}
    source.path.write_bytes(new)
    item = back_up_one(store, source)
    assert item is not None and item.rewritten
    now = assert_chunked(store, source, new)
    gone = old_names - {c.name for c in now}
    assert {name for name, oid in item.changes.items() if oid is None} == {
        f"{source.stored}/{name}" for name in gone}


# --- which files a session has --------------------------------------------------------------------

def test_sources_main_first_then_subagents_then_tool_results(claude: Path) -> None:
    main = claude / "abc.jsonl"
    main.write_bytes(b"")
    for rel in ["tool-results/b.txt", "tool-results/a.txt", "subagents/agent-z.jsonl",
                "subagents/agent-a.jsonl", "notes/ignored.txt", "other.jsonl"]:
        path = claude / "abc" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}\n")
    found = backup.sources("abc", main)
    assert [s.stored for s in found] == [
        "transcripts/abc/main.jsonl", "transcripts/abc/subagents/agent-a.jsonl",
        "transcripts/abc/subagents/agent-z.jsonl", "transcripts/abc/tool-results/a.txt",
        "transcripts/abc/tool-results/b.txt"]
    assert found[0].path == main and found[0].jsonl and not found[3].jsonl


def test_sources_without_a_session_folder(claude: Path) -> None:
    main = claude / "abc.jsonl"
    assert backup.sources("abc", main) == [Source(main, "transcripts/abc/main.jsonl")]
    (claude / "abc" / "subagents").mkdir(parents=True)
    assert len(backup.sources("abc", main)) == 1


ODD_NAMES = ["agent with spaces.jsonl", "agent-ünïcødé-✓.jsonl", "-leading-dash.jsonl",
             "000000000000-000000000", "main.jsonl", ".hidden.jsonl", "new\nline.txt",
             "back\\slash.txt", "nested/deeper/agent-x.jsonl", "no-extension"]


def test_odd_names_are_found_and_stored(store: Store, claude: Path) -> None:
    main = claude / "s1.jsonl"
    main.write_bytes((SPOTTER / "short.jsonl").read_bytes())
    records = (SUBAGENTS / "agent-acompact-e1f845.jsonl").read_bytes()
    for name in ODD_NAMES:
        path = claude / "s1" / "subagents" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(records + name.encode())
    found = backup.sources("s1", main)
    assert [s.stored for s in found[1:]] == sorted(
        f"transcripts/s1/subagents/{name}" for name in ODD_NAMES)
    back_up(store, *found)
    for source in found[1:]:
        expected = source.path.read_bytes()
        assert stored_bytes(store, source) == (whole_lines(expected) if source.jsonl
                                               else expected)
    assert stored_bytes(store, found[0]) == main.read_bytes()


def test_a_name_git_cannot_store_does_not_block_the_session(store: Store, claude: Path) -> None:
    """git refuses tree entries such as `.git`; one such file beside a session must not stop
    the main transcript and the other files from being backed up."""
    main = claude / "s1.jsonl"
    main.write_bytes((SPOTTER / "short.jsonl").read_bytes())
    folder = claude / "s1" / "tool-results"
    folder.mkdir(parents=True)
    (folder / ".git").write_bytes(b"odd but possible\n")
    (folder / "toolu_01.txt").write_bytes(b"output\n")
    found = backup.sources("s1", main)
    back_up(store, *found)
    assert stored_bytes(store, found[0]) == main.read_bytes()
    ok = next(s for s in found if s.path.name == "toolu_01.txt")
    assert stored_bytes(store, ok) == b"output\n"


def test_symlinks_and_special_files_are_skipped(claude: Path, tmp_path: Path) -> None:
    main = claude / "s1.jsonl"
    main.write_bytes(b"{}\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(b'{"secret":1}\n')
    subagents = claude / "s1" / "subagents"
    subagents.mkdir(parents=True)
    (subagents / "agent-real.jsonl").write_bytes(b"{}\n")
    (subagents / "link-to-file.jsonl").symlink_to(outside / "secret.jsonl")
    (subagents / "link-to-sibling.jsonl").symlink_to(subagents / "agent-real.jsonl")
    (subagents / "dangling.jsonl").symlink_to(tmp_path / "missing.jsonl")
    (subagents / "linked-dir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(subagents / "fifo.jsonl")  # reading it would block the hook
    (claude / "s1" / "tool-results").symlink_to(outside, target_is_directory=True)
    found = backup.sources("s1", main)
    assert [s.stored for s in found] == ["transcripts/s1/main.jsonl",
                                         "transcripts/s1/subagents/agent-real.jsonl"]


def test_a_missing_file_is_an_os_error(store: Store, claude: Path) -> None:
    """checkpoint.py reports an OSError per file and goes on with the others."""
    source = backup.sources("s1", claude / "s1.jsonl")[0]
    with pytest.raises(FileNotFoundError):
        backup.back_up(store.repo, None, source)


# --- session ids ----------------------------------------------------------------------------------

@pytest.mark.parametrize("good", [SID, "abc", "A1", "s1.2_x-y", "a" * 128])
def test_usable_session_ids(good: str) -> None:
    assert check_session_id(good) == good


@pytest.mark.parametrize("bad", [
    "", "/", "a/b", "/etc/passwd", "..", "../x", "a/../b", "a..b", ".", ".hidden", "-x", "_x",
    "a\\b", "a b", "a\nb", "abc\n", "a\x00b", "a" * 129, "ü", None, 123, 1.5, ["abc"],
    {"id": "abc"}, b"abc"])
def test_unusable_session_ids_are_refused(bad: object) -> None:
    with pytest.raises(HookInputError):
        check_session_id(bad)
