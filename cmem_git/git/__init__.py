"""Ground: git objects, trees, chunks, packs, the compare-and-swap branch move, locks, the
error log, path checks for untrusted names, and git subprocesses. Knows nothing of memory files,
hooks or sessions; imports only errors.py and paths.py above the standard library and pygit2."""
