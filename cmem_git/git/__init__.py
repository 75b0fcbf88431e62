"""The git layer: objects, trees, chunks, packs, the compare-and-swap branch move (repo.py),
locks and `.git/cmem` (lock.py), the error log, path checks for untrusted names, and the git
processes cmem starts (command.py). Knows nothing of memory files, hooks or sessions; below it
are only errors.py and atomic.py, the standard library and pygit2."""
