"""`zone-publisher lint` and `build` as a user (or CI) runs them: real processes, exit codes, output."""

import json
import subprocess
import sys
from pathlib import Path

import dns.zone

REPO_ROOT = Path(__file__).parent.parent


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "publisher", *args], cwd=cwd or REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_clean_repository_exits_zero_with_json_shape():
    done = run_cli("lint", "zones", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert set(document) == {"findings", "zones", "errors", "warnings"}
    assert document["errors"] == 0 and document["findings"] == []
    zone = next(z for z in document["zones"] if z["zone"] == "example.com.")
    assert set(zone) == {"zone", "file", "records", "findings"}
    assert zone["file"] == "example.com.lua" and zone["records"] > 20
    for finding in (f for z in document["zones"] for f in z["findings"]):
        assert set(finding) == {"severity", "code", "zone", "file", "line", "message"}
        assert finding["severity"] in ("error", "warning") and isinstance(finding["line"], int)


def test_errors_exit_one_and_name_file_and_line(tmp_path):
    repo = make_repo(tmp_path, {
        "good.test.lua": 'a("www", "192.0.2.1")\n',
        "bad.test.lua": 'a("www", "192.0.2.1")\naaaa("v6", "192.0.2.1")\n',
    })
    done = run_cli("lint", str(repo), "--format", "json")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["errors"] >= 1
    bad = next(z for z in document["zones"] if z["zone"] == "bad.test.")
    error = next(f for f in bad["findings"] if f["severity"] == "error")
    assert (error["file"], error["line"]) == ("bad.test.lua", 2)
    good = next(z for z in document["zones"] if z["zone"] == "good.test.")
    assert good["findings"] == [] and good["records"] == 1

    text = run_cli("lint", str(repo))
    assert text.returncode == 1
    assert "bad.test.lua:2: error:" in text.stdout

    github = run_cli("lint", str(repo), "--format", "github")
    assert github.returncode == 1
    assert "::error file=bad.test.lua,line=2::" in github.stdout


def test_warnings_alone_exit_zero(tmp_path):
    repo = make_repo(tmp_path, {"warn.test.lua": 'spf("", "v=spf1 -all")\n'})
    done = run_cli("lint", str(repo), "--format", "json")
    assert done.returncode == 0, done.stdout
    document = json.loads(done.stdout)
    assert document["warnings"] >= 1 and document["errors"] == 0


def test_single_file_with_zone_option_and_usage_errors(tmp_path):
    path = tmp_path / "db.example"
    path.write_text("$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 1209600 300\n@ IN NS ns1\n@ IN NS ns2\n"
                    "ns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\nwww IN A 192.0.2.3\n")
    done = run_cli("lint", str(path), "--zone", "example.test", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    assert document["zones"][0]["zone"] == "example.test." and document["zones"][0]["file"] == str(path)
    assert document["zones"][0]["records"] == 6

    assert run_cli("lint", str(tmp_path / "missing")).returncode == 2
    assert run_cli("lint", "--format", "yaml").returncode == 2
    assert run_cli("lint", str(tmp_path), "--zone", "example.test").returncode == 2


def test_build_writes_loadable_zone_files_for_good_zones_only(tmp_path):
    repo = make_repo(tmp_path / "repo", {
        "good.test.lua": 'a("www", "192.0.2.1")\nmx("", "mail.example.net", 10)\n',
        "bad.test.lua": 'cname("", "elsewhere.example.net")\n',
    })
    out = tmp_path / "out"
    done = run_cli("build", str(repo), "--out", str(out))
    assert done.returncode == 1  # one zone has errors
    assert sorted(p.name for p in out.iterdir()) == ["good.test.zone"]
    zone = dns.zone.from_file(str(out / "good.test.zone"), origin="good.test.", relativize=False)
    assert zone.get_rdataset("www.good.test.", "A")[0].to_text() == "192.0.2.1"
    assert zone.get_rdataset("good.test.", "MX")[0].to_text() == "10 mail.example.net."


# -- hostile repositories (issue 8) ---------------------------------------------------------------
# Each case is the base repository (a valid BIND and a valid Lua zone) plus one hostile file for the
# zone bad.test.  The real CLI runs under an address-space limit, so a case that explodes fails here
# instead of taking the machine; it must exit 1 with valid JSON, the finding on the right zone, the
# other zones evaluated, and a small report.

import os
import resource
import shutil

import pytest

HOSTILE = Path(__file__).parent / "data" / "hostile"
SECRET = "hunter2-lint-secret-5f3c"
SOA = "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n@ NS ns2\n" \
      "ns1 A 192.0.2.53\nns2 A 198.51.100.53\n"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))


def lint_hostile(repo: Path) -> tuple[subprocess.CompletedProcess, dict]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ZONE_PUBLISHER_TEST_SECRET": SECRET}
    done = subprocess.run([sys.executable, "-m", "publisher", "lint", str(repo), "--format", "json"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=environment,
                          preexec_fn=_limit_memory)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    return done, json.loads(done.stdout)


def hostile_repo(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(HOSTILE / "base", repo)
    for name, content in files.items():
        path = repo / os.fsdecode(name) if isinstance(name, bytes) else repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return repo


def assert_others_evaluated(document: dict, bad: str = "bad.test.") -> None:
    zones = {z["zone"]: z for z in document["zones"]}
    assert zones["good.test."]["records"] == 6 and zones["good.test."]["findings"] == []
    assert zones["lua.test."]["records"] == 2 and zones["lua.test."]["findings"] == []
    assert set(zones) - {"good.test.", "lua.test."} <= {bad}


def codes_of(document: dict, zone: str) -> list[str]:
    return [f["code"] for z in document["zones"] if z["zone"] == zone for f in z["findings"]]


def test_hostile_companions_linked_to_host_files_are_refused_unread(tmp_path):
    outside = tmp_path / "deploy.key"
    outside.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    repo = hostile_repo(tmp_path, {"bad.test.lua": 'a("www", "192.0.2.3")\n', "other.test.bind": SOA})
    (repo / "bad.test.clones").symlink_to("/proc/self/environ")
    (repo / "bad.test.yml").symlink_to("/etc/passwd")
    (repo / "other.test.clones").symlink_to(outside)
    (repo / "other.test.yml").symlink_to("../deploy.key")
    done, document = lint_hostile(repo)
    assert done.returncode == 1
    assert codes_of(document, "bad.test.") == ["symlink-outside-repository"] * 2
    assert codes_of(document, "other.test.") == ["symlink-outside-repository"] * 2
    zones = {z["zone"]: z for z in document["zones"]}
    assert zones["bad.test."]["records"] == 1  # the zone itself still evaluated
    for leaked in (SECRET, "root:", "PRIVATE KEY", "b3BlbnNzaC1r", "PYTHONPATH"):
        assert leaked not in done.stdout and leaked not in done.stderr


def test_hostile_generate_width_is_bounded(tmp_path):
    repo = hostile_repo(tmp_path, {"bad.test.bind": SOA + "$GENERATE 0-0 h${0,300000000,n} A 192.0.2.1\n"})
    done, document = lint_hostile(repo)
    assert done.returncode == 1
    assert codes_of(document, "bad.test.") == ["generate-syntax"]
    assert_others_evaluated(document)


def test_hostile_include_fan_out_is_bounded(tmp_path):
    files = {"bad.test.bind": SOA + "$INCLUDE inc1.db\n" * 10}
    for level in range(1, 10):
        files[f"inc{level}.db"] = f"$INCLUDE inc{level + 1}.db\n" * 10 if level < 9 else "x A 192.0.2.1\n"
    done, document = lint_hostile(hostile_repo(tmp_path, files))
    assert done.returncode == 1
    assert codes_of(document, "bad.test.") == ["include-limit"]
    assert_others_evaluated(document)


@pytest.mark.slow  # about 10 s: two million records are read before the limit is reached
def test_hostile_generate_lines_stop_at_the_record_limit(tmp_path):
    lines = "".join(f"$GENERATE 0-65535 g{i}-$ A 192.0.2.1\n" for i in range(50))
    done, document = lint_hostile(hostile_repo(tmp_path, {"bad.test.bind": SOA + lines}))
    assert done.returncode == 1
    bad = next(z for z in document["zones"] if z["zone"] == "bad.test.")
    assert [f["code"] for f in bad["findings"]] == ["zone-record-limit"]
    assert bad["findings"][0]["message"].startswith("more than 2000000 records, the configured maximum")
    assert_others_evaluated(document)


def test_hostile_file_of_nuls_is_refused_by_size_and_reports_little(tmp_path):
    repo = hostile_repo(tmp_path, {"bad.test.bind": b""})
    os.truncate(repo / "bad.test.bind", 100_000_000)  # sparse: 100 MB of NULs without the disk
    done, document = lint_hostile(repo)
    assert done.returncode == 1
    assert codes_of(document, "bad.test.") == ["file-too-large"]
    assert len(done.stdout) < 5000
    assert_others_evaluated(document)


def test_hostile_garbage_reports_are_capped_in_count_and_length(tmp_path):
    long_line = "\0" * 1_000_000 + "\n"
    garbage = long_line + "".join(f"x{i} BOGUS {'y' * 5000}\n" for i in range(2000))
    done, document = lint_hostile(hostile_repo(tmp_path, {"bad.test.bind": garbage}))
    assert done.returncode == 1
    findings = next(z for z in document["zones"] if z["zone"] == "bad.test.")["findings"]
    assert len(findings) <= 100 and findings[-1]["code"] == "too-many-findings"
    assert all(len(f["message"]) < 600 for f in findings)
    assert len(done.stdout) < 100_000
    assert_others_evaluated(document)


def test_hostile_yaml_alias_bomb_is_refused(tmp_path):
    bomb = (HOSTILE / "alias-bomb.yml").read_text()
    done, document = lint_hostile(hostile_repo(tmp_path, {"bad.test.bind": SOA, "bad.test.yml": bomb}))
    assert done.returncode == 1
    assert codes_of(document, "bad.test.") == ["invalid-zone-settings"]
    assert_others_evaluated(document)


def test_hostile_clones_count_against_the_record_limit(tmp_path):
    clones = "".join(f"c{i}.test\n" for i in range(700))  # 3,006 records x 701 > 2,000,000
    files = {"bad.test.bind": SOA + "$GENERATE 0-2999 h$ A 192.0.2.1\n", "bad.test.clones": clones}
    done, document = lint_hostile(hostile_repo(tmp_path, files))
    assert done.returncode == 1
    assert codes_of(document, "bad.test.") == ["zone-record-limit"]
    assert codes_of(document, "c0.test.") == ["clone-source-has-errors"]
    assert sum(z["records"] for z in document["zones"]) < 2_000_000
    zones = {z["zone"]: z for z in document["zones"]}
    assert zones["good.test."]["findings"] == [] and zones["lua.test."]["records"] == 2


@pytest.mark.parametrize("files, code, zone", [
    ({"bad.test.bind": SOA, "bad.test.yml": "slaves: 5\n"}, "invalid-zone-settings", "bad.test."),
    ({"bad.test.bind": SOA, "bad.test.yml": b"slaves: [\xff\xfe]\n"}, "file-not-utf8", "bad.test."),
    ({"bad.test.bind": SOA, "bad.test.yml": "slaves: " + "[" * 5000 + "]" * 5000 + "\n"},
     "invalid-zone-settings", "bad.test."),
    ({"bad.test.bind": SOA, "bad.test.clones": b"ok.test\n\xff.test\n"}, "file-not-utf8", "bad.test."),
    ({b"b\xffd.test.bind": SOA}, "invalid-zone-file-name", "b\\xffd.test."),
], ids=["slaves-5", "yml-not-utf8", "yml-5000-brackets", "clones-not-utf8", "zone-name-not-utf8"])
def test_hostile_bad_file_is_a_finding_on_its_zone(tmp_path, files, code, zone):
    done, document = lint_hostile(hostile_repo(tmp_path, files))
    assert done.returncode == 1
    assert codes_of(document, zone) == [code]
    assert_others_evaluated(document, zone)
    text = run_cli("lint", str(tmp_path / "repo"))  # the text form prints too
    assert text.returncode == 1 and "Traceback" not in text.stderr and f"[{code}]" in text.stdout


def test_hostile_symlink_loops_are_findings(tmp_path):
    repo = hostile_repo(tmp_path, {"bad.test.bind": SOA})
    (repo / "loop.test.bind").symlink_to("loop.test.bind")
    (repo / "bad.test.yml").symlink_to("bad.test.yml")
    done, document = lint_hostile(repo)
    assert done.returncode == 1
    assert codes_of(document, "loop.test.") == ["file-unreadable"]
    assert codes_of(document, "bad.test.") == ["file-unreadable"]
    assert "symbolic link loop" in json.dumps(document)


def test_hostile_templates_are_findings_on_the_lua_zones(tmp_path):
    repo = hostile_repo(tmp_path, {b"templates/t\xff.lua": "x = 1\n", "templates/mail.lua": "y = 2\n",
                                   "templates/big.lua": b""})
    os.truncate(repo / "templates" / "big.lua", 100_000_000)
    (repo / "templates" / "loop.lua").symlink_to("loop.lua")
    (repo / "templates" / "env.lua").symlink_to("/proc/self/environ")
    done, document = lint_hostile(repo)
    assert done.returncode == 1
    lua = next(z for z in document["zones"] if z["zone"] == "lua.test.")
    assert [(f["code"], f["file"], f["message"]) for f in lua["findings"]] == [
        ("template-not-regular-file", "templates/big.lua", "templates/big.lua is larger than the limit of 64 MiB; not used"),
        ("template-not-regular-file", "templates/env.lua", "templates/env.lua is a symbolic link to a file outside the "
                                                           "repository; copy the file into the repository instead; not used"),
        ("template-not-regular-file", "templates/loop.lua", "templates/loop.lua is a symbolic link loop; not used"),
        ("template-not-regular-file", "templates/t\\xff.lua",
         "templates/t\\xff.lua has a file name that is not valid UTF-8; rename it (not used)"),
    ]
    assert SECRET not in done.stdout
    assert lua["records"] == 2  # evaluated with the other template
    good = next(z for z in document["zones"] if z["zone"] == "good.test.")
    assert good["records"] == 6 and good["findings"] == []


def test_companions_of_no_zone_are_warnings_naming_the_intended_file(tmp_path):
    repo = make_repo(tmp_path, {
        "example.com.lua": 'a("www", "192.0.2.1")\n',
        "example.com.lua.clones": "example.net\n",
        "Example.com.yml": "slaves: [192.0.2.9]\n",
        "nothing.test.yml": "slaves: [192.0.2.1]\n",
    })
    done = run_cli("lint", str(repo), "--format", "json")
    assert done.returncode == 0, done.stdout
    document = json.loads(done.stdout)
    zone = next(z for z in document["zones"] if z["zone"] == "example.com.")
    messages = {f["file"]: f["message"] for f in zone["findings"] if f["code"] == "companion-without-zone"}
    assert "rename it example.com.clones" in messages["example.com.lua.clones"]
    assert "rename it example.com.yml" in messages["Example.com.yml"]
    assert [(f["code"], f["file"], f["severity"]) for f in document["findings"]] == [
        ("companion-without-zone", "nothing.test.yml", "warning")]
    assert document["warnings"] == 3 and [z["zone"] for z in document["zones"]] == ["example.com."]


def test_folder_without_zones_is_an_error(tmp_path):
    make_repo(tmp_path, {"README.md": "zones live elsewhere\n"})
    done = run_cli("lint", str(tmp_path), "--format", "json")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert [f["code"] for f in document["findings"]] == ["no-zones"] and document["errors"] == 1
    text = run_cli("lint", str(tmp_path))
    assert text.returncode == 1 and "no zone files found" in text.stdout
