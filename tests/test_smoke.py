from __future__ import annotations

from conftest import CORPUS, Project, payload, run_hook, stored_file


def test_session_end_commits_transcript(project: Project) -> None:
    source = CORPUS / "spotter" / "short.jsonl"
    transcript = project.transcripts / "s1.jsonl"
    transcript.write_bytes(source.read_bytes())
    done = run_hook(project, "SessionEnd", payload("SessionEnd", "s1", transcript, project.root))
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    assert project.git("status", "--porcelain") == ""
    assert stored_file(project.memory, "s1") == source.read_bytes()
    assert not (project.memory / "transcripts").exists(), "transcripts live in objects only"
