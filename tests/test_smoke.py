from __future__ import annotations

from conftest import CORPUS, Project, payload, run_hook


def test_session_end_commits_transcript(project: Project) -> None:
    source = CORPUS / "spotter" / "short.jsonl"
    transcript = project.transcripts / "s1.jsonl"
    transcript.write_bytes(source.read_bytes())
    done = run_hook(project, "SessionEnd", payload("SessionEnd", "s1", transcript, project.root))
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    assert project.git("status", "--porcelain") == ""
    stored = project.memory / "transcripts" / "s1" / "main.jsonl"
    assert b"".join(p.read_bytes() for p in sorted(stored.iterdir())) == source.read_bytes()
