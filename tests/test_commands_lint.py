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
