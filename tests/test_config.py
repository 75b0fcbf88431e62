from __future__ import annotations

import dataclasses
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmem_git.errors import ConfigError
from cmem_git.repo import config
from cmem_git.repo.config import (
    Config,
    Events,
    default_config_text,
    load_config,
    write_default_config,
)


@pytest.fixture(autouse=True)
def fixed_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "box.example.org")


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "cmem.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


# --- defaults -------------------------------------------------------------------------------------

def test_missing_file_gives_defaults(cfg: Path) -> None:
    got = load_config(cfg)
    assert got == Config(device="box", staleness_hours=24, memory_size_warning_kib=20,
                         events=Events(True, True, True, True), stop_throttle_minutes=10)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults(cfg: Path, text: str) -> None:
    assert load_config(write(cfg, text)) == Config(device="box")


@pytest.mark.parametrize("host, device", [
    ("box.example.org", "box"),
    ("Jane's MacBook Pro", "Jane-s-MacBook-Pro"),
    ("-dash", "dash"),
    ("under_score-1", "under_score-1"),
    ("", "device"),
    ("é", "device"),
])
def test_default_device_is_short_and_sanitized(monkeypatch: pytest.MonkeyPatch, host: str,
                                               device: str) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    assert config.default_device() == device
    assert config.valid_device(config.default_device())


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().staleness_hours = 1  # type: ignore[misc]


def test_values_are_read(cfg: Path) -> None:
    write(cfg, "device: laptop-2\nstaleness_hours: 1.5\nmemory_size_warning_kib: 0\n"
               "events:\n  stop: false\n  pre_compact: no\nstop_throttle_minutes: 3\n")
    got = load_config(cfg)
    assert got == Config(device="laptop-2", staleness_hours=1.5, memory_size_warning_kib=0,
                         events=Events(stop=False, pre_compact=False), stop_throttle_minutes=3)
    assert isinstance(got.stop_throttle_minutes, float)


def test_utf8_bom_is_accepted(cfg: Path) -> None:
    cfg.write_bytes("\ufeffdevice: a\n".encode())
    assert load_config(cfg).device == "a"


# --- default text ---------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["laptop", "a.b_c-d", "1234", "true", "null", "1e3", "0x1F"])
def test_default_text_loads_back_to_defaults(cfg: Path, device: str) -> None:
    assert load_config(write(cfg, default_config_text(device))) == Config(device=device)


def test_default_text_comments_every_key() -> None:
    lines = default_config_text("laptop").splitlines()
    names = [f.name for f in dataclasses.fields(Config)]
    names += [f.name for f in dataclasses.fields(Events)]
    for name in names:
        [at] = [i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:")]
        assert lines[at - 1].lstrip().startswith("# "), name


def test_default_text_refuses_a_bad_device() -> None:
    with pytest.raises(ValueError):
        default_config_text("a/b")


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, words", [
    ("device: x\nstaleness_hours: [1,\n", 3, "expected the node content"),
    ("device: x\n  nested: bad\n", 2, "mapping values are not allowed"),
    ("device: a\n---\ndevice: b\n", 2, "single document"),
    ("device: !custom a\n", 1, "constructor for the tag"),
    ("device: a\nstop_throttle_minutes: \x07\n", 2, "unacceptable character #x0007"),
])
def test_invalid_yaml(cfg: Path, text: str, line: int, words: str) -> None:
    error = load_error(write(cfg, text))
    assert (error.path, error.line) == (cfg, line)
    assert f"{cfg}:{line}:" in str(error)
    assert words in str(error)
    assert error.hint is not None and str(cfg) in error.hint


@pytest.mark.parametrize("text, line", [
    ("- device\n- laptop\n", 1),
    ("just words\n", 1),
    ("# comment\n\n42\n", 3),
])
def test_top_level_must_be_a_mapping(cfg: Path, text: str, line: int) -> None:
    error = load_error(write(cfg, text))
    assert error.line == line
    assert f"{cfg}:{line}: the top level must be a mapping" in str(error)


@pytest.mark.parametrize("text, line, key, got", [
    ("device: a\nstaleness_hours: abc\n", 2, "staleness_hours", "'abc'"),
    ("staleness_hours: -1\n", 1, "staleness_hours", "-1"),
    ("memory_size_warning_kib: .nan\n", 1, "memory_size_warning_kib", "nan"),
    ("stop_throttle_minutes: .inf\n", 1, "stop_throttle_minutes", "inf"),
    ("stop_throttle_minutes: true\n", 1, "stop_throttle_minutes", "true"),
    ("staleness_hours: [1]\n", 1, "staleness_hours", "a list"),
    ("staleness_hours:\n  abc\n", 1, "staleness_hours", "'abc'"),
    ("events:\n\n  stop: maybe\n", 3, "events.stop", "'maybe'"),
    ("events:\n  session_end: 1\n", 2, "events.session_end", "1"),
    ("stop_throttle_minutes: '5'\n", 1, "stop_throttle_minutes", "'5'"),
    ("stop_throttle_minutes:\n", 1, "stop_throttle_minutes", "nothing"),
    ("device: a/b\n", 1, "device", "'a/b'"),
    ("device: ''\n", 1, "device", "''"),
    ("device: -x\n", 1, "device", "'-x'"),
    ("device: 1234\n", 1, "device", "1234"),
    ("device:\n", 1, "device", "nothing"),
])
def test_wrong_type_names_key_and_line(cfg: Path, text: str, line: int, key: str,
                                       got: str) -> None:
    error = load_error(write(cfg, text))
    assert error.line == line
    assert f"{cfg}:{line}: {key}: must be" in str(error)
    assert str(error).endswith(f"got {got}")


@pytest.mark.parametrize("text, line", [("events: true\n", 1), ("events:\nstaleness_hours: 2\n", 1),
                                        ("\nevents: [stop]\n", 2)])
def test_events_must_be_a_mapping(cfg: Path, text: str, line: int) -> None:
    error = load_error(write(cfg, text))
    assert error.line == line
    assert f"{cfg}:{line}: events: must be a mapping" in str(error)


def test_unknown_key_suggests_the_close_one(cfg: Path) -> None:
    error = load_error(write(cfg, "device: a\n\nstalenes_hours: 3\n"))
    assert error.line == 3
    assert str(error).endswith(
        f"{cfg}:3: unknown key 'stalenes_hours' (did you mean 'staleness_hours'?)")


def test_unknown_event_suggests_the_close_one(cfg: Path) -> None:
    error = load_error(write(cfg, "events:\n  session_start: true\n  stpo: false\n"))
    assert error.line == 3
    assert "unknown key 'events.stpo' (did you mean 'events.stop'?)" in str(error)


def test_unknown_key_without_a_close_one_lists_the_known(cfg: Path) -> None:
    error = load_error(write(cfg, "zzz: 3\n"))
    assert "unknown key 'zzz' (known keys: device, staleness_hours," in str(error)
    assert "did you mean" not in str(error)


@pytest.mark.parametrize("text, line, words", [
    ("device: a\nstaleness_hours: 1\ndevice: b\n", 3, "duplicate key 'device'"),
    ("events:\n  stop: true\n  stop: false\n", 3, "duplicate key 'events.stop'"),
    ("device: a\n1: 2\n", 2, "expected a key name, got '1'"),
    ("<<: {device: a}\n", 1, "expected a key name"),
])
def test_bad_keys(cfg: Path, text: str, line: int, words: str) -> None:
    error = load_error(write(cfg, text))
    assert error.line == line
    assert f"{cfg}:{line}: {words}" in str(error)


def test_non_utf8_file(cfg: Path) -> None:
    cfg.write_bytes(b"device: a\n# caf\xe9\n")
    error = load_error(cfg)
    assert error.line == 2
    assert f"{cfg}:2: not UTF-8 text (byte 0xe9 at offset 15)" in str(error)


def test_unreadable_file(cfg: Path) -> None:
    cfg.mkdir()  # a directory where the file should be: reading fails even as root
    error = load_error(cfg)
    assert error.line is None
    assert f"invalid config {cfg}: cannot read it" in str(error)


# --- writing --------------------------------------------------------------------------------------

@pytest.fixture
def no_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_write_default_config(cfg: Path, no_umask: None) -> None:
    assert write_default_config(cfg, "laptop") is True
    assert cfg.read_text(encoding="utf-8") == default_config_text("laptop")
    assert load_config(cfg) == Config(device="laptop")
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert [p.name for p in cfg.parent.iterdir()] == [cfg.name]  # no temp file left


def test_write_default_config_keeps_an_existing_file(cfg: Path) -> None:
    write(cfg, "device: mine\n")
    assert write_default_config(cfg, "laptop") is False
    assert cfg.read_text(encoding="utf-8") == "device: mine\n"


def test_write_default_config_keeps_a_dangling_symlink(cfg: Path, tmp_path: Path) -> None:
    cfg.symlink_to(tmp_path / "elsewhere.yaml")
    assert write_default_config(cfg, "laptop") is False
    assert cfg.is_symlink()


def test_write_default_config_leaves_nothing_on_failure(cfg: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_default_config(cfg, "laptop")
    assert list(cfg.parent.iterdir()) == []


# --- the parsed-file cache ------------------------------------------------------------------------

@pytest.fixture
def repo_cfg(tmp_path: Path) -> Path:
    """cmem.yaml where it lives: in a memory repository, whose .git/cmem keeps the cache."""
    import pygit2

    pygit2.init_repository(str(tmp_path / "memory"))
    return tmp_path / "memory" / "cmem.yaml"


def cache_of(path: Path) -> Path:
    return path.parent / ".git" / "cmem" / "config.json"


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, a load that parses yaml fails the test."""
    from cmem_git.repo import config_yaml

    def parse(path: Path, text: str) -> object:
        raise AssertionError(f"{path} was parsed")
    monkeypatch.setattr(config_yaml, "parse", parse)


FULL = ("device: laptop\nstaleness_hours: 1.5\nmemory_size_warning_kib: 7\nevents:\n"
        "  stop: false\nstop_throttle_minutes: 3\nauto_sync: false\n"
        "connect_timeout_seconds: 5\nnetwork_timeout_seconds: 6\nredaction: true\n"
        "redaction_extra: {mine: 'acme_[0-9]{8}'}\nredaction_allow: ['ok_[a-z]+']\n")


def test_cache_answers_the_next_load_without_parsing(repo_cfg: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = load_config(write(repo_cfg, FULL))
    assert parsed.redaction_extra == (("mine", "acme_[0-9]{8}"),)
    assert stat.S_IMODE(cache_of(repo_cfg).stat().st_mode) == 0o600
    no_parsing(monkeypatch)
    assert load_config(repo_cfg) == parsed


def test_every_field_survives_the_cache(repo_cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = load_config(write(repo_cfg, FULL))
    set_in_file = {line.split(":")[0] for line in FULL.splitlines() if not line.startswith(" ")}
    assert set_in_file == {f.name for f in dataclasses.fields(Config)}
    no_parsing(monkeypatch)
    cached = load_config(repo_cfg)
    assert cached == parsed
    assert all(type(getattr(cached, f.name)) is type(getattr(parsed, f.name))
               for f in dataclasses.fields(Config))


def test_a_changed_file_is_parsed_again(repo_cfg: Path) -> None:
    load_config(write(repo_cfg, "stop_throttle_minutes: 3\n"))
    # Same size, same second: only the text tells them apart.
    assert load_config(write(repo_cfg, "stop_throttle_minutes: 4\n")).stop_throttle_minutes == 4
    assert load_config(repo_cfg).stop_throttle_minutes == 4


@pytest.mark.parametrize("text, line", [
    ("stop_throttle_minutes: 3\nstop_throttle_minute: 3\n", 2),
    ("stop_throttle_minutes: [3\n", 2),
    ("events:\n  stop: maybe\n", 2),
])
def test_a_broken_file_is_reported_though_a_cache_exists(repo_cfg: Path, text: str,
                                                         line: int) -> None:
    load_config(write(repo_cfg, "stop_throttle_minutes: 3\n"))
    kept = cache_of(repo_cfg).read_bytes()
    error = load_error(write(repo_cfg, text))
    assert error.line == line
    assert cache_of(repo_cfg).read_bytes() == kept  # a broken file is never kept
    assert load_error(repo_cfg).line == line  # nor on the second try


def test_a_file_that_becomes_unreadable_is_reported(repo_cfg: Path) -> None:
    load_config(write(repo_cfg, "device: a\n"))
    repo_cfg.write_bytes(b"device: a\n# caf\xe9\n")
    assert load_error(repo_cfg).line == 2


@pytest.mark.parametrize("damage", [
    b"", b"{", b"\x00\xff garbage", b"[]", b'{"stamp": 1}', "truncated",
    "wrong-type", "unknown-key", "bad-device", "other-parser", "other-text",
])
def test_a_damaged_cache_is_ignored_and_rewritten(repo_cfg: Path, damage: bytes | str) -> None:
    import json

    expected = load_config(write(repo_cfg, FULL))
    cache = cache_of(repo_cfg)
    good = json.loads(cache.read_bytes())
    if isinstance(damage, bytes):
        cache.write_bytes(damage)
    elif damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:-20])
    else:
        bad = json.loads(cache.read_bytes())
        if damage == "wrong-type":
            bad["values"]["stop_throttle_minutes"] = "3"
        elif damage == "unknown-key":
            bad["values"]["stop_throttle_minute"] = 3
        elif damage == "bad-device":
            bad["values"]["device"] = "-rf"
        elif damage == "other-parser":
            bad["stamp"][0] += 1
            bad["values"]["stop_throttle_minutes"] = 99
        else:
            bad["text"] = "stop_throttle_minutes: 99\n"
            bad["values"]["stop_throttle_minutes"] = 99
        cache.write_text(json.dumps(bad))
    assert load_config(repo_cfg) == expected
    assert json.loads(cache.read_bytes()) == good


def test_cache_keeps_the_default_device_unresolved(repo_cfg: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without `device:` names the host it runs on, also when it comes from the cache."""
    assert load_config(write(repo_cfg, "staleness_hours: 2\n")).device == "box"
    monkeypatch.setattr(socket, "gethostname", lambda: "renamed.example.org")
    no_parsing(monkeypatch)
    assert load_config(repo_cfg) == Config(device="renamed", staleness_hours=2)


def test_cache_that_cannot_be_written_changes_nothing(repo_cfg: Path) -> None:
    (repo_cfg.parent / ".git" / "cmem").mkdir()
    cache_of(repo_cfg).mkdir()  # a folder where the cache goes: writing it fails, even as root
    assert load_config(write(repo_cfg, FULL)).device == "laptop"
    assert cache_of(repo_cfg).is_dir()


def test_no_cache_outside_a_repository(cfg: Path) -> None:
    load_config(write(cfg, FULL))
    assert sorted(p.name for p in cfg.parent.iterdir()) == ["cmem.yaml"]
