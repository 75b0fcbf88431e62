"""Trees built and read in memory: no working tree, no repository state beyond the objects."""

from __future__ import annotations

import pygit2

BLOB = pygit2.GIT_FILEMODE_BLOB
TREE = pygit2.GIT_FILEMODE_TREE


def new_blobs(old: pygit2.Tree | None, new: pygit2.Tree, prefix: str = ""
              ) -> list[tuple[str, pygit2.Oid]]:
    """(path, id) of every blob in `new` that `old` does not have at that path. Subtrees with
    the same id are skipped whole, so the cost follows what changed, not the repository."""
    found = []
    for entry in new:
        name = entry.name or ""
        before = old[name] if old is not None and name in old else None
        if before is not None and before.id == entry.id:
            continue
        if entry.type_str == "tree":
            inner = before if isinstance(before, pygit2.Tree) else None
            child = new[name]
            assert isinstance(child, pygit2.Tree)
            found += new_blobs(inner, child, f"{prefix}{name}/")
        elif entry.type_str == "blob":
            found.append((f"{prefix}{name}", entry.id))
    return found


def tree_diff(old: pygit2.Tree | None, new: pygit2.Tree) -> pygit2.Diff:
    """What changed from `old` (None: nothing) to `new`."""
    return old.diff_to_tree(new) if old is not None else new.diff_to_tree(swap=True)


def lookup(tree: pygit2.Tree | None, path: str) -> pygit2.Object | None:
    if tree is None:
        return None
    try:
        return tree[path]
    except KeyError:
        return None


def file_bytes(tree: pygit2.Tree | None, path: str) -> bytes | None:
    """The content of the file at `path` in `tree`; None when there is no such file."""
    obj = lookup(tree, path)
    return bytes(obj.data) if isinstance(obj, pygit2.Blob) else None


def subtree(tree: pygit2.Tree | None, path: str) -> pygit2.Tree | None:
    obj = lookup(tree, path)
    return obj if isinstance(obj, pygit2.Tree) else None


def update_tree(repo: pygit2.Repository, tree: pygit2.Tree | None,
            changes: dict[tuple[str, ...], pygit2.Oid | None]) -> pygit2.Oid | None:
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    below: dict[str, dict[tuple[str, ...], pygit2.Oid | None]] = {}
    for parts, oid in changes.items():
        if len(parts) > 1:
            below.setdefault(parts[0], {})[parts[1:]] = oid
        elif oid is not None:
            builder.insert(parts[0], oid, BLOB)
        elif builder.get(parts[0]) is not None:
            builder.remove(parts[0])
    for name, inner in below.items():
        current = builder.get(name)
        child = update_tree(repo, current if isinstance(current, pygit2.Tree) else None, inner)
        if child is not None:
            builder.insert(name, child, TREE)
        elif current is not None:
            builder.remove(name)
    return builder.write() if len(builder) else None
