"""The corpus the tests use is a byte-for-byte copy of the project's shared corpus."""

from __future__ import annotations

import pytest
from conftest import CORPUS, SHARED_CORPUS, corpus_transcripts


def test_corpus_has_every_kind_of_transcript() -> None:
    names = {p.name for p in corpus_transcripts()}
    assert {"short.jsonl", "tool_heavy.jsonl", "subagent.jsonl", "agent-a2898e3.jsonl",
            "representative_messages.jsonl"} <= names
    assert any(".EXCERPT-compact" in name for name in names)


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="no ../shared/corpus beside this clone")
def test_copy_matches_the_shared_corpus() -> None:
    shared = {p.relative_to(SHARED_CORPUS): p.read_bytes()
              for p in SHARED_CORPUS.rglob("*") if p.is_file()}
    copied = {p.relative_to(CORPUS): p.read_bytes() for p in CORPUS.rglob("*") if p.is_file()}
    assert copied == shared
