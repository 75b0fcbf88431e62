"""Where transcripts sit in the memory's tree, spelled without loading what writes them.

backup.py stores sessions under `transcripts/<id>/`; the readers of an index (read/recall.py, the
fast `cmem search`) name that folder too but must not pay for pygit2, which backup.py imports.
backup.py re-exports the name, so both spellings are one constant.
"""

from __future__ import annotations

ROOT = "transcripts"
