"""The evaluation cache: a hit is exactly what evaluating again gives, and every input is in the key."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import publisher.zone.lua_zone as lua_zone
from publisher.cli import main
from publisher.config import load_config_text, ConfigError
from publisher.publish.orchestrator import publish
from publisher.zone.bind_zone import ReadLog, file_signature
from publisher.zone.evaluate import EvaluationOptions, evaluate_repository
from publisher.zone.evaluation_cache import (TRANSIENT_CODES, EvaluationCache, ZoneEvaluation, entry_key,
                                             read_with_signature)
from publisher.zone.repository import discover
from publisher.zone.sandbox import SandboxLimits

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"
# Every zone repository the tests hold: Lua with templates and .clones, LuaDNS style, BIND with
# $INCLUDE, .yml settings (zones/), the hostile base, the service's.
REPOSITORIES = {
    "example": ROOT / "zones",
    "lua": DATA / "lua" / "repo",
    "luadns-style": DATA / "lua" / "luadns-style",
    "bind": DATA / "bind" / "repo",
    "hostile-base": DATA / "hostile" / "base",
    "service": DATA / "service" / "repo",
}


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(REPOSITORIES[name], target)
    return target


def cached(repo: Path, cache_dir: Path, options: EvaluationOptions = EvaluationOptions(), **kwargs):
    """(result, cache) of one evaluation through a fresh EvaluationCache on ``cache_dir``."""
    cache = EvaluationCache(cache_dir, **kwargs)
    return evaluate_repository(repo, options, cache=cache), cache


def entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.iterdir() if not p.name.startswith(".")) if cache_dir.exists() else []


@pytest.mark.parametrize("name", sorted(REPOSITORIES))
def test_a_hit_is_what_evaluating_again_gives(name, tmp_path, cache_dir):
    repo = copy(name, tmp_path)
    fresh = evaluate_repository(repo)
    first, cache = cached(repo, cache_dir)
    sources = len(discover(repo).sources)
    assert (cache.hits, cache.misses) == (0, sources)
    second, cache = cached(repo, cache_dir)
    assert (cache.hits, cache.misses) == (sources, 0)
    # The whole result: zones with every record, finding, ignore rule, service, secondary and
    # clone, the repository's findings and skipped files.
    assert first == fresh
    assert second == fresh
    assert any(z.zone is not None and z.zone.records for z in second.zones)


def test_the_repositories_cover_what_the_key_holds():
    """The comparison above goes through templates, $INCLUDE, .clones and .yml."""
    lua = discover(REPOSITORIES["lua"])
    assert (REPOSITORIES["lua"] / "templates").is_dir() and any(s.clones for s in lua.sources)
    assert "$INCLUDE" in (REPOSITORIES["bind"] / "example.com.bind").read_text()
    assert any(s.secondaries for s in discover(REPOSITORIES["example"]).sources)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


# (repository, change, zones that must be evaluated again)
EDITS = {
    "zone file": ("lua", lambda r: append(r / "example.net.lua", 'a("added", "192.0.2.99")\n'), {"example.net."}),
    "template": ("lua", lambda r: append(r / "templates" / "20-web.lua", '\na("from-template", "192.0.2.55")\n'),
                 {"example.com.", "example.net.", "2.0.192.in-addr.arpa."}),
    "legacy templates.lua": ("lua", lambda r: append(r / "templates.lua", '\na("from-legacy", "192.0.2.56")\n'),
                             {"example.com.", "example.net.", "2.0.192.in-addr.arpa."}),
    "new template": ("lua", lambda r: (r / "templates" / "30-new.lua").write_text('a("from-new", "192.0.2.57")\n'),
                     {"example.com.", "example.net.", "2.0.192.in-addr.arpa."}),
    "included file": ("bind", lambda r: append(r / "includes" / "hosts.inc", "\nadded IN A 192.0.2.77\n"),
                      {"example.com."}),
    ".clones": ("lua", lambda r: append(r / "example.com.clones", "another-clone.test\n"), {"example.com."}),
    ".yml": ("example", lambda r: edit(r / "shop.example.yml", "192.0.2.200", "192.0.2.201"), {"shop.example."}),
    "new .yml": ("lua", lambda r: (r / "example.net.yml").write_text("slaves: [192.0.2.9]\n"), {"example.net."}),
}


@pytest.mark.parametrize("what", sorted(EDITS))
def test_an_edit_is_a_miss_for_the_zones_it_touches(what, tmp_path, cache_dir):
    name, change, touched = EDITS[what]
    repo = copy(name, tmp_path)
    before, _ = cached(repo, cache_dir)
    change(repo)
    after, cache = cached(repo, cache_dir)
    assert cache.misses == len(touched)
    assert cache.hits == len(discover(repo).sources) - len(touched)
    assert after == evaluate_repository(repo)
    changed = {z.origin for z in after.zones} ^ {z.origin for z in before.zones} | \
        {a.origin for a, b in zip(after.zones, before.zones) if a != b}
    assert changed & touched  # the edit shows in the result, so a stale hit would have failed


@pytest.mark.parametrize("options", [
    EvaluationOptions(default_ttl=600),
    EvaluationOptions(ttl_overrides=(("example.net.", 900),)),
    EvaluationOptions(server="knot"),
    EvaluationOptions(max_ttl=3600),
    EvaluationOptions(lua_limits=SandboxLimits(max_records=5)),
    EvaluationOptions(max_file_bytes=1 << 20),
], ids=["default-ttl", "ttl-override", "server", "max-ttl", "sandbox-limits", "max-size"])
def test_an_option_is_in_the_key(options, tmp_path, cache_dir):
    repo = copy("lua", tmp_path)
    cached(repo, cache_dir)
    result, cache = cached(repo, cache_dir, options)
    assert cache.misses >= 1
    assert result == evaluate_repository(repo, options)


def test_a_ttl_override_of_one_zone_leaves_the_others_cached(tmp_path, cache_dir):
    repo = copy("lua", tmp_path)
    cached(repo, cache_dir)
    _, cache = cached(repo, cache_dir, EvaluationOptions(ttl_overrides=(("example.net.", 900),)))
    assert (cache.misses, cache.hits) == (1, 2)


def test_a_file_appearing_where_an_include_looked_first_is_a_miss(tmp_path, cache_dir):
    """$INCLUDE looks in the repository root before the including file's directory: a file
    created there changes what is read, though no file read before changed."""
    repo = copy("bind", tmp_path)
    append(repo / "includes" / "hosts.inc", "\n$INCLUDE more.inc\n")
    (repo / "includes" / "more.inc").write_text("beside IN A 192.0.2.81\n")
    before, _ = cached(repo, cache_dir)
    assert "beside.lab.example.com." in {r.name for r in before.zones[0].zone.records}
    (repo / "more.inc").write_text("at-root IN A 192.0.2.82\n")
    after, cache = cached(repo, cache_dir)
    assert cache.misses == 1
    assert after == evaluate_repository(repo)
    assert "at-root.lab.example.com." in {r.name for r in after.zones[0].zone.records}


def test_a_missing_include_that_appears_is_a_miss(tmp_path, cache_dir):
    repo = copy("bind", tmp_path)
    append(repo / "example.com.bind", "\n$INCLUDE later.inc\n")
    before, _ = cached(repo, cache_dir)
    assert any(f.code == "include-not-found" for f in before.zones[0].findings)
    (repo / "later.inc").write_text("later IN A 192.0.2.83\n")
    after, cache = cached(repo, cache_dir)
    assert cache.misses == 1 and after == evaluate_repository(repo)
    assert not any(f.code == "include-not-found" for f in after.zones[0].findings)


def test_a_zone_file_turned_into_a_link_elsewhere_is_a_miss(tmp_path, cache_dir):
    """Relative $INCLUDEs are looked up beside the file the zone file resolves to."""
    repo = copy("bind", tmp_path)
    (repo / "sub").mkdir()
    text = (repo / "example.com.bind").read_text().replace("$INCLUDE includes/hosts.inc\n", "$INCLUDE local.inc\n")
    (repo / "example.com.bind").write_text(text)
    (repo / "sub" / "example.com.bind").write_text(text)
    (repo / "sub" / "local.inc").write_text("in-sub IN A 192.0.2.84\n")
    before, _ = cached(repo, cache_dir)
    (repo / "example.com.bind").unlink()
    (repo / "example.com.bind").symlink_to("sub/example.com.bind")
    after, cache = cached(repo, cache_dir)
    assert cache.misses == 1 and after == evaluate_repository(repo) and after != before


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "garbage", "directory"])
def test_a_corrupt_entry_is_a_miss(damage, tmp_path, cache_dir):
    repo = copy("lua", tmp_path)
    cached(repo, cache_dir)
    for entry in entries(cache_dir):
        data = entry.read_bytes()
        if damage == "truncated":
            entry.write_bytes(data[: len(data) // 2])
        elif damage == "flipped":
            entry.write_bytes(data[:-10] + bytes([data[-10] ^ 1]) + data[-9:])
        elif damage == "empty":
            entry.write_bytes(b"")
        elif damage == "garbage":
            entry.write_bytes(os.urandom(len(data)))
        else:
            entry.unlink()
            entry.mkdir()
    result, cache = cached(repo, cache_dir)
    assert (cache.hits, cache.misses) == (0, 3)
    assert result == evaluate_repository(repo)


def test_an_entry_under_another_key_is_a_miss(tmp_path, cache_dir):
    repo = copy("lua", tmp_path)
    cached(repo, cache_dir)
    first, second = entries(cache_dir)[:2]
    shutil.copy(first, second)  # a valid entry, but for another zone
    result, cache = cached(repo, cache_dir)
    assert cache.misses == 1 and result == evaluate_repository(repo)


def test_the_size_bound_removes_the_least_recently_used(tmp_path, cache_dir):
    repo = copy("lua", tmp_path)
    _, cache = cached(repo, cache_dir)
    origins = {p.name: cache.load(p.name, repo).result.origin for p in entries(cache_dir)}
    assert sorted(origins.values()) == ["2.0.192.in-addr.arpa.", "example.com.", "example.net."]
    for path in entries(cache_dir):
        os.utime(path, (1_000_000, 1_000_000))
    # example.net. changes: its old entry is not read again, the two others are (and so are used
    # more recently); the new entry leaves room for three.
    append(repo / "example.net.lua", 'a("added", "192.0.2.99")\n')
    bound = sum(p.stat().st_size for p in entries(cache_dir)) + 200  # the new entry is a few bytes longer
    cached(repo, cache_dir, max_bytes=bound)
    left = {p.name for p in entries(cache_dir)}
    assert set(origins) - left == {name for name, origin in origins.items() if origin == "example.net."}
    assert len(left) == 3 and sum(p.stat().st_size for p in entries(cache_dir)) <= bound
    append(repo / "example.com.lua", 'a("added", "192.0.2.98")\n')
    cached(repo, cache_dir, max_bytes=1)
    assert entries(cache_dir) == []  # every entry is beyond a bound of one byte


def test_a_zone_stopped_by_a_time_limit_is_not_kept(tmp_path, cache_dir):
    repo = copy("hostile-base", tmp_path)
    (repo / "loop.test.lua").write_text("while true do end\n")
    options = EvaluationOptions(lua_limits=SandboxLimits(cpu_seconds=0.3, wall_seconds=5))
    first, _ = cached(repo, cache_dir, options)
    codes = {f.code for z in first.zones if z.origin == "loop.test." for f in z.findings}
    assert codes & TRANSIENT_CODES
    _, cache = cached(repo, cache_dir, options)
    assert cache.misses == 1 and cache.hits == len(discover(repo).sources) - 1


def test_transient_codes_are_codes_the_engine_gives():
    """A renamed limit code would otherwise be cached silently."""
    source = "".join(p.read_text() for p in (ROOT / "publisher" / "zone").glob("*.py")
                     if p.name != "evaluation_cache.py")
    assert [code for code in sorted(TRANSIENT_CODES) if f'"{code}"' not in source] == []


def test_a_file_changed_while_it_was_read_is_not_stored(tmp_path, cache_dir):
    repo = copy("bind", tmp_path)
    zone_file = repo / "example.com.bind"
    data, resolved, signature = read_with_signature(zone_file, 1 << 20)
    result = evaluate_repository(repo)
    evaluation = ZoneEvaluation(result.zones[0])
    cache = EvaluationCache(cache_dir)
    changed = signature[:-1] + (signature[-1] + 1,)
    log = ReadLog(probed=[], opened=[(resolved, changed)])
    assert not cache.store("k" * 64, evaluation, repo, read=((resolved, signature),), log=log)
    log = ReadLog(probed=[], opened=[(resolved, signature)])
    assert cache.store("k" * 64, evaluation, repo, read=((resolved, signature),), log=log)
    assert cache.load("k" * 64, repo) == evaluation
    assert file_signature(os.stat(resolved)) == signature


def test_keys_differ_by_every_part():
    assert len({entry_key("a", 1), entry_key("a", 2), entry_key("b", 1), entry_key(["a", 1])}) == 4
    assert entry_key("a", 1) == entry_key("a", 1)


def test_an_unwritable_directory_only_misses(tmp_path):
    repo = copy("lua", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result, cache = cached(repo, blocker / "cache")
    assert result == evaluate_repository(repo) and cache.misses == 3


# -- the commands ---------------------------------------------------------------------------------

CONFIG = """
[source]
path = "zones"
[defaults]
nameservers = ["ns1.nameservers.example.", "ns2.nameservers.example."]
hostmaster = "hostmaster.nameservers.example."
resolver = "127.0.0.1:9"  # loopback only: the repository's ALIAS stays unresolved (a warning), at once
[[provider]]
name = "files"
type = "zonefile"
directory = "served"
[state]
path = "state.db"
"""


@pytest.fixture
def sandboxes(monkeypatch) -> list:
    """The Lua sandboxes started, observed through the class lua_zone runs zones with."""
    started = []

    class Counted(lua_zone.LuaSandbox):
        def __enter__(self):
            started.append(self)
            return super().__enter__()

    monkeypatch.setattr(lua_zone, "LuaSandbox", Counted)
    return started


def test_a_no_change_plan_does_not_start_the_sandbox(tmp_path, sandboxes):
    shutil.copytree(REPOSITORIES["lua"], tmp_path / "zones")
    config = load_config_text(CONFIG, base=tmp_path)
    assert config.cache.enabled and config.cache.path == tmp_path / "cache" / "evaluations"  # beside state.db
    applied = publish(config, tmp_path / "zones", apply=True)
    assert {o.status for o in applied.outcomes} == {"applied"} and len(sandboxes) == 1
    planned = publish(config, tmp_path / "zones", apply=False)
    assert len(sandboxes) == 1  # every zone came from the cache
    assert planned.plan.checksum == publish(config, tmp_path / "zones", apply=False).plan.checksum
    assert all(o.status == "unchanged" for o in planned.outcomes)
    append(tmp_path / "zones" / "example.net.lua", 'a("added", "192.0.2.99")\n')
    edited = publish(config, tmp_path / "zones", apply=False)
    assert len(sandboxes) == 2
    assert any(o.changes for o in edited.outcomes if o.zone == "example.net.")


def test_a_disabled_cache_evaluates_every_time(tmp_path, sandboxes):
    shutil.copytree(REPOSITORIES["lua"], tmp_path / "zones")
    config = load_config_text(CONFIG + "[cache]\nenabled = false\n", base=tmp_path)
    publish(config, tmp_path / "zones", apply=False)
    publish(config, tmp_path / "zones", apply=False)
    assert len(sandboxes) == 2 and not (tmp_path / "cache").exists()


def test_cache_configuration(tmp_path):
    config = load_config_text(CONFIG + '[cache]\npath = "evaluations"\nmax_size = 1000\n', base=tmp_path)
    assert (config.cache.path, config.cache.max_size, config.cache.enabled) == (tmp_path / "evaluations", 1000, True)
    moved = load_config_text(CONFIG.replace('path = "state.db"', 'path = "/srv/dns/state.db"'), base=tmp_path)
    assert moved.cache.path == Path("/srv/dns/cache/evaluations")  # the default follows the state database
    for bad in ("max_size = 0", "max_size = \"big\"", "enabled = 1", "colour = 1"):
        with pytest.raises(ConfigError, match=r"\[cache\]"):
            load_config_text(CONFIG + f"[cache]\n{bad}\n", base=tmp_path)


def test_lint_caches_only_when_asked(tmp_path, sandboxes, capsys):
    repo = copy("lua", tmp_path)
    assert main(["lint", str(repo)]) == 0
    plain = capsys.readouterr().out
    assert main(["lint", str(repo), "--cache", str(tmp_path / "lint-cache")]) == 0
    assert capsys.readouterr().out == plain
    assert main(["lint", str(repo), "--cache", str(tmp_path / "lint-cache")]) == 0
    assert capsys.readouterr().out == plain
    assert len(sandboxes) == 2  # the plain run and the first cached one
    assert not (repo / "var").exists() and len(entries(tmp_path / "lint-cache")) == 3


def test_build_with_the_embedded_default_writes_no_cache_into_the_repository(tmp_path, capsys):
    repo = copy("lua", tmp_path)
    assert main(["build", str(repo), "--out", str(tmp_path / "out")]) == 0
    assert not (repo / "var").exists()
    (tmp_path / "config.toml").write_text(CONFIG.replace('path = "zones"', f'path = "{repo}"'))
    assert main(["build", str(repo), "--out", str(tmp_path / "out2"), "--config", str(tmp_path / "config.toml")]) == 0
    assert len(entries(tmp_path / "cache" / "evaluations")) == 3
    def zone_texts(directory: Path) -> list[str]:  # without the header, which names the configuration
        return sorted("".join(line for line in p.read_text().splitlines(True) if not line.startswith(";"))
                      for p in directory.iterdir())

    assert zone_texts(tmp_path / "out") == zone_texts(tmp_path / "out2")


def test_plan_starts_without_what_only_evaluation_needs():
    """What a plan served from the cache does not import (each is imported where it is used)."""
    import subprocess
    import sys

    unneeded = ("yaml", "dns.dnssec", "publisher.zone.bind_zone", "publisher.zone.lua_zone", "lupa")
    code = ("import sys, publisher.commands.plan, publisher.commands.apply; "
            f"print(' '.join(m for m in {unneeded!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("command", ["lint", "plan"])
def test_a_command_run_from_the_shell_writes_everything_before_it_ends(command, tmp_path):
    """The one-shot commands end without the interpreter's teardown (cli.exit_without_teardown):
    their output is still complete, piped, and their exit status the command's."""
    import json
    import subprocess
    import sys

    shutil.copytree(REPOSITORIES["lua"], tmp_path / "zones")
    (tmp_path / "config.toml").write_text(CONFIG)
    args = (["lint", str(tmp_path / "zones"), "--format", "json"] if command == "lint" else
            ["plan", "--config", str(tmp_path / "config.toml"), "--format", "json"])
    run = subprocess.run([sys.executable, "-m", "publisher", *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert len(document["zones"]) == len(evaluate_repository(tmp_path / "zones").zones)
    (tmp_path / "zones" / "broken.test.lua").write_text("a(\n")
    run = subprocess.run([sys.executable, "-m", "publisher", "lint", str(tmp_path / "zones")], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=120)
    assert run.returncode == 1 and "broken.test.lua" in run.stdout and run.stdout.endswith("warning(s)\n")
