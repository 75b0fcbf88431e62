"""chunks.py: cutting a transcript into chunk files and reading them back.

The properties here are the ones the rest of cmem builds on: the pieces give back the file byte
for byte, every boundary sits after a newline, a piece is never larger than the chunk size unless
it is one long line, the names carry the right byte and line offsets and sort in file order, and
cutting a longer version of the same bytes keeps every boundary but the last.
"""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest
from conftest import CORPUS, corpus_transcripts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmem_git.git import chunks
from cmem_git.git.chunks import CHUNK_SIZE, Chunk, Piece, chunk_name, cut
from cmem_git.git.trees import BLOB, TREE
from cmem_git.repo.store import Store

FIXTURE_OK = settings(max_examples=120, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])

# Lines of a transcript-like file: short and long lines, empty lines, bytes that are not UTF-8,
# and a last line that may lack its newline.
_line = st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"x"))
_lines = st.lists(st.tuples(_line, st.booleans()), max_size=30)


def _join(lines: list[tuple[bytes, bool]], final_newline: bool) -> bytes:
    data = b"".join(text + (b"\n" * (1 + repeat)) for text, repeat in lines)
    return data if final_newline or not data else data + b"tail"


data_strategy = st.builds(_join, _lines, st.booleans())


def assert_well_cut(data: bytes, pieces: list[Piece], offset: int, line: int, size: int) -> None:
    """Everything cut() promises about its result."""
    assert b"".join(p.data for p in pieces) == data
    assert all(p.data for p in pieces), "no empty piece"
    for before in pieces[:-1]:
        assert before.data.endswith(b"\n"), "every piece but the last ends a line"
    for piece in pieces:
        single_line = piece.data.count(b"\n") == 0 or (
            piece.data.count(b"\n") == 1 and piece.data.endswith(b"\n"))
        assert len(piece.data) <= size or single_line, "only one long line may exceed the size"
    position = 0
    for piece in pieces:
        assert piece.offset == offset + position
        assert piece.line == line + data[:position].count(b"\n")
        assert piece.name == chunk_name(piece.offset, piece.line)
        position += len(piece.data)
    names = [p.name for p in pieces]
    assert names == sorted(names) and len(set(names)) == len(names)


def first_line(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end == -1 else data[:end + 1]


# --- cut ------------------------------------------------------------------------------------------

@given(data=data_strategy, size=st.integers(1, 64), offset=st.integers(0, 10**9),
       line=st.integers(0, 10**6))
@settings(max_examples=300, deadline=None)
def test_cut_properties(data: bytes, size: int, offset: int, line: int) -> None:
    pieces = cut(data, offset, line, size)
    assert_well_cut(data, pieces, offset, line, size)
    # Pieces are as full as they may be: the next line would not have fitted. Otherwise a
    # 100 MiB transcript could become thousands of chunks (one per line).
    for piece, following in zip(pieces, pieces[1:]):
        assert len(piece.data) + len(first_line(following.data)) > size


@given(data=data_strategy, more=data_strategy, size=st.integers(1, 64))
@settings(max_examples=300, deadline=None)
def test_cut_keeps_boundaries_when_the_data_grows(data: bytes, more: bytes, size: int) -> None:
    """What makes an append rewrite only the tail: cutting a longer version of the same bytes
    gives the same pieces, except for the last one."""
    before = cut(data, size=size)
    after = cut(data + more, size=size)
    assert after[:max(len(before) - 1, 0)] == before[:-1]


def test_cut_of_nothing_is_no_piece() -> None:
    assert cut(b"") == []
    assert cut(b"", 100, 7, size=4) == []


def test_cut_exact_size_is_one_piece() -> None:
    data = b"ab\ncd\n"
    assert cut(data, size=len(data)) == [Piece(0, 0, data)]
    assert [p.data for p in cut(data, size=len(data) - 1)] == [b"ab\n", b"cd\n"]


def test_a_long_line_is_a_chunk_of_its_own() -> None:
    long = b"{" + b"x" * 50 + b"}\n"
    data = b"a\n" + b"b\n" + long + b"c\n" + b"d\n"
    pieces = cut(data, size=10)
    assert [p.data for p in pieces] == [b"a\nb\n", long, b"c\nd\n"]
    assert [p.line for p in pieces] == [0, 2, 3]
    assert [p.offset for p in pieces] == [0, 4, 4 + len(long)]


def test_an_unterminated_long_line_is_the_last_piece() -> None:
    pieces = cut(b"a\n" + b"z" * 30, size=8)
    assert [p.data for p in pieces] == [b"a\n", b"z" * 30]
    assert pieces[-1].line == 1


def test_cut_every_corpus_transcript_at_the_real_size() -> None:
    data = b"".join(path.read_bytes() + b"\n" for path in corpus_transcripts())
    assert len(data) > 2 * CHUNK_SIZE, "the corpus should give several chunks"
    pieces = cut(data)
    assert len(pieces) >= 3
    assert_well_cut(data, pieces, 0, 0, CHUNK_SIZE)
    assert all(len(p.data) <= CHUNK_SIZE for p in pieces)  # no corpus line is that long


@pytest.mark.parametrize("path", corpus_transcripts(), ids=lambda p: p.name)
def test_cut_each_corpus_transcript_in_small_pieces(path: Path) -> None:
    data = path.read_bytes()
    pieces = cut(data, size=4096)
    assert_well_cut(data, pieces, 0, 0, 4096)
    assert pieces[-1].line + pieces[-1].data.count(b"\n") == data.count(b"\n")


# --- names ----------------------------------------------------------------------------------------

@given(st.lists(st.tuples(st.integers(0, 10**12 - 1), st.integers(0, 10**9 - 1)), max_size=20))
def test_names_sort_in_offset_order(places: list[tuple[int, int]]) -> None:
    names = [chunk_name(offset, line) for offset, line in places]
    assert all(len(name) == 22 for name in names)
    assert sorted(names) == [chunk_name(o, n) for o, n in sorted(places)]


def test_chunk_name_format() -> None:
    assert chunk_name(0, 0) == "000000000000-000000000"
    assert chunk_name(262144, 17) == "000000262144-000000017"
    assert Chunk(5, 1, pygit2.hash(b"")).name == "000000000005-000000001"


# --- listing, stored_size, read_range -------------------------------------------------------------

@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return Store.init(tmp_path / "mem").repo


def store_pieces(repo: pygit2.Repository, pieces: list[Piece]) -> list[Chunk]:
    return [Chunk(p.offset, p.line, repo.create_blob(p.data)) for p in pieces]


def tree_of(repo: pygit2.Repository, pieces: list[Piece], extra: bool = False) -> pygit2.Tree:
    builder = repo.TreeBuilder()
    for piece in reversed(pieces):  # insertion order must not matter
        builder.insert(piece.name, repo.create_blob(piece.data), BLOB)
    if extra:
        builder.insert("README", repo.create_blob(b"not a chunk"), BLOB)
        builder.insert("000000000001-00000000", repo.create_blob(b"short name"), BLOB)
        builder.insert("999999999999-999999999", repo.TreeBuilder().write(), TREE)
    tree = repo[builder.write()]
    assert isinstance(tree, pygit2.Tree)
    return tree


def test_listing_is_in_file_order_and_ignores_other_entries(repo: pygit2.Repository) -> None:
    data = (CORPUS / "spotter" / "tool_heavy.jsonl").read_bytes()
    pieces = cut(data, size=2000)
    assert len(pieces) > 10  # names of varying offsets, where a text sort could go wrong
    listed = chunks.listing(repo, tree_of(repo, pieces, extra=True))
    assert [(c.offset, c.line) for c in listed] == [(p.offset, p.line) for p in pieces]
    assert [c.oid for c in listed] == [pygit2.hash(p.data) for p in pieces]
    assert chunks.listing(repo, None) == []


def test_stored_size_reads_bytes_and_lines(repo: pygit2.Repository) -> None:
    data = (CORPUS / "claude-code-log" / "representative_messages.jsonl").read_bytes()
    listed = chunks.listing(repo, tree_of(repo, cut(data, size=1000)))
    lines = data.count(b"\n") + (not data.endswith(b"\n"))  # a last line without newline counts
    assert chunks.stored_size(repo, listed) == (len(data), lines)
    assert chunks.stored_size(repo, []) == (0, 0)


@given(data=data_strategy, size=st.integers(1, 32), bounds=st.tuples(
    st.integers(0, 400), st.one_of(st.none(), st.integers(0, 400))))
@FIXTURE_OK
def test_read_range_is_a_slice(repo: pygit2.Repository, monkeypatch: pytest.MonkeyPatch,
                               data: bytes, size: int, bounds: tuple[int, int | None]) -> None:
    start, end = bounds
    listed = store_pieces(repo, cut(data, size=size))
    assert chunks.read_range(repo, listed) == data
    read: list[pygit2.Oid] = []
    real = chunks.blob_data

    def spy(repo_: pygit2.Repository, oid: pygit2.Oid) -> bytes:
        read.append(oid)
        return real(repo_, oid)

    with monkeypatch.context() as patch:
        patch.setattr(chunks, "blob_data", spy)
        assert chunks.read_range(repo, listed, start, end) == data[start:end]
    stop = len(data) if end is None else min(end, len(data))
    if start < stop:  # a non-empty range reads exactly the chunks it overlaps, in order
        overlapping = [c.oid for c, p in zip(listed, cut(data, size=size))
                       if c.offset < stop and c.offset + len(p.data) > start]
        assert read == overlapping


def test_read_range_of_a_corpus_file(repo: pygit2.Repository) -> None:
    data = (CORPUS / "spotter" / "subagent.jsonl").read_bytes()
    listed = store_pieces(repo, cut(data, size=8192))
    assert chunks.read_range(repo, listed) == data
    middle = listed[len(listed) // 2].offset
    assert chunks.read_range(repo, listed, middle - 10, middle + 10) == data[middle - 10:middle + 10]
    assert chunks.read_range(repo, listed, len(data)) == b""
    assert chunks.read_range(repo, [], 0, 10) == b""
