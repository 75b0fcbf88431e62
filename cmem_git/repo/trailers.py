"""The `Cmem-*` trailers cmem writes on its commits, named once.

Every writer (checkpoint, documents, import, adoption, merge, init, purge) and every reader (history,
context, timeline, delta) spells a trailer through these constants, so a typo is a NameError
rather than a trailer nobody reads. `git log --format='%(trailers)'` shows them as written.
"""

from __future__ import annotations

from typing import Final


class Trailer:
    PREFIX: Final = "Cmem-"  # + a hook event's detail trailer (repo/events.py): Source, Reason, ...
    EVENT: Final = "Cmem-Event"
    SESSION: Final = "Cmem-Session"
    DEVICE: Final = "Cmem-Device"
    SOURCE: Final = "Cmem-Source"
    TRIGGER: Final = "Cmem-Trigger"
    REASON: Final = "Cmem-Reason"
    TRANSCRIPT_BYTES: Final = "Cmem-Transcript-Bytes"
    TRANSCRIPT_LINES: Final = "Cmem-Transcript-Lines"
    ADDED_BYTES: Final = "Cmem-Added-Bytes"
    ADDED_LINES: Final = "Cmem-Added-Lines"
    FILES: Final = "Cmem-Files"
    REWRITTEN: Final = "Cmem-Rewritten"
    MEMORY: Final = "Cmem-Memory"
    REDACTIONS: Final = "Cmem-Redactions"
    DOCUMENT: Final = "Cmem-Document"
    TITLE: Final = "Cmem-Title"
    COALESCE: Final = "Cmem-Coalesce"
    ADOPTED: Final = "Cmem-Adopted"
    IMPORT_SOURCE: Final = "Cmem-Import-Source"
    IMPORTED: Final = "Cmem-Imported"
    MERGED: Final = "Cmem-Merged"
    MERGED_DEVICE: Final = "Cmem-Merged-Device"
    CONFLICTS: Final = "Cmem-Conflicts"
    PURGED: Final = "Cmem-Purged"  # what a purge took out (a secret by a hash prefix)
    PURGE_OF: Final = "Cmem-Purge-Of"  # the tip a purge rewrote
