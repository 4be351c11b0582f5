"""The LuaDNS repository layout: which files are zones, and what else belongs to them.

Only top-level files count (LuaDNS semantics): ``<zone>.lua``, ``<zone>.bind`` or ``<zone>.zone``,
with optional ``<zone>.clones`` and ``<zone>.yml`` beside them.  ``templates/`` and ``templates.lua``
belong to the Lua evaluator; everything else is skipped and listed as such.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from publisher.model import ERROR, WARNING, Finding

LUA = "lua"
BIND = "bind"
ZONE_SUFFIXES = {".lua": LUA, ".bind": BIND, ".zone": BIND}
_COMPANION_SUFFIXES = (".clones", ".yml", ".yaml")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$|^\*$")


@dataclass(frozen=True)
class ZoneSource:
    """One zone file of the repository and its companions."""

    origin: str  # "example.com."
    path: Path  # absolute path of the zone file
    file: str  # repository-relative path, as findings show it
    kind: str  # LUA or BIND
    clones: tuple[tuple[str, int], ...] = ()  # (clone origin, line in the .clones file)
    clones_file: str = ""
    secondaries: tuple[str, ...] = ()  # from <zone>.yml "slaves:"


@dataclass(frozen=True)
class Layout:
    """What ``discover`` found: zone sources, skipped files, and layout mistakes as findings."""

    sources: tuple[ZoneSource, ...]
    skipped: tuple[str, ...]
    findings: tuple[Finding, ...]


def origin_from_file_name(file_name: str) -> str:
    """``example.com.lua`` -> ``example.com.``; the zone name is the file name without its suffix."""
    stem = file_name
    for suffix in (*ZONE_SUFFIXES, ".db"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem.lower().rstrip(".") + "."


def zone_name_problem(origin: str) -> str | None:
    """Why ``origin`` cannot be a zone name, or None when it can."""
    labels = origin.rstrip(".").split(".")
    if origin == "." or not all(labels):
        return "the zone name has an empty label"
    if len(origin) > 254:
        return "the zone name is longer than 255 octets"
    for label in labels:
        if not _LABEL.match(label):
            return f"label {label!r} is not a valid DNS label"
    return None


def discover(repo: Path) -> Layout:
    """List the zones of a repository, in file-name order, with their companion files."""
    repo = repo.resolve()
    sources: list[ZoneSource] = []
    skipped: list[str] = []
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    entries = sorted(repo.iterdir(), key=lambda p: p.name)
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir():
            if name != "templates":
                skipped.append(name + "/")
            continue
        suffix = entry.suffix
        if name == "templates.lua" or suffix in _COMPANION_SUFFIXES:
            continue  # read with their zone (or by the Lua evaluator)
        kind = ZONE_SUFFIXES.get(suffix)
        if kind is None:
            skipped.append(name)
            continue
        origin = origin_from_file_name(name)
        problem = zone_name_problem(origin)
        if problem:
            findings.append(Finding(ERROR, "invalid-zone-file-name", origin, name, 0,
                                    f"{problem}; a zone file is named <zone>{suffix}, e.g. example.com{suffix}"))
            continue
        if entry.is_symlink() and not _inside(entry.resolve(), repo):
            findings.append(Finding(ERROR, "symlink-outside-repository", origin, name, 0,
                                    "this zone file is a symbolic link to a file outside the repository; "
                                    "copy the file into the repository instead"))
            continue
        if origin in seen:
            findings.append(Finding(ERROR, "duplicate-zone", origin, name, 0,
                                    f"zone {origin} is also defined by {seen[origin]}; keep only one file per zone"))
            continue
        seen[origin] = name
        clones, clone_findings = _read_clones(repo, name, origin)
        secondaries, yml_findings = _read_settings(repo, name, origin)
        findings += clone_findings + yml_findings
        sources.append(ZoneSource(origin, entry, name, kind, clones,
                                  (name.rsplit(".", 1)[0] + ".clones") if clones else "", secondaries))
    for source in sources:
        for clone, line in source.clones:
            if clone in seen:
                findings.append(Finding(ERROR, "duplicate-zone", clone, source.clones_file, line,
                                        f"clone {clone} is also defined by {seen[clone]}; remove one of them"))
            seen.setdefault(clone, source.clones_file)
    return Layout(tuple(sources), tuple(skipped), tuple(findings))


def _inside(path: Path, repo: Path) -> bool:
    return path == repo or repo in path.parents


def _read_clones(repo: Path, zone_file: str, origin: str) -> tuple[tuple[tuple[str, int], ...], list[Finding]]:
    base = zone_file.rsplit(".", 1)[0]
    path = repo / f"{base}.clones"
    if not path.is_file():
        return (), []
    clones, findings = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        clone = text.lower().rstrip(".") + "."
        problem = zone_name_problem(clone)
        if problem or " " in text:
            findings.append(Finding(ERROR, "invalid-clone-name", origin, path.name, number,
                                    f"{text!r} is not a domain name ({problem or 'one domain per line'})"))
        elif clone == origin:
            findings.append(Finding(WARNING, "clone-of-itself", origin, path.name, number,
                                    f"{text} clones the zone onto itself; remove this line"))
        else:
            clones.append((clone, number))
    return tuple(clones), findings


def _read_settings(repo: Path, zone_file: str, origin: str) -> tuple[tuple[str, ...], list[Finding]]:
    base = zone_file.rsplit(".", 1)[0]
    for suffix in (".yml", ".yaml"):
        path = repo / f"{base}{suffix}"
        if path.is_file():
            break
    else:
        return (), []
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        return (), [Finding(ERROR, "invalid-zone-settings", origin, path.name, (mark.line + 1) if mark else 0,
                            f"not valid YAML: {getattr(error, 'problem', error)}")]
    if not isinstance(settings, dict):
        return (), [Finding(ERROR, "invalid-zone-settings", origin, path.name, 1,
                            "zone settings must be a mapping, e.g. 'slaves: [192.0.2.1]'")]
    findings = [Finding(WARNING, "unknown-zone-setting", origin, path.name, 0,
                        f"unknown setting {key!r} ignored; the documented key is 'slaves'")
                for key in settings if key != "slaves"]
    slaves = settings.get("slaves") or []
    if isinstance(slaves, str):
        slaves = [slaves]
    secondaries = []
    for value in slaves:
        try:
            secondaries.append(str(ipaddress.ip_address(str(value))))
        except ValueError:
            findings.append(Finding(ERROR, "invalid-secondary-address", origin, path.name, 0,
                                    f"slaves: {value!r} is not an IP address"))
    return tuple(secondaries), findings
