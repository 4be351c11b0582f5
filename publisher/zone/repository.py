"""The LuaDNS repository layout: which files are zones, and what else belongs to them.

Only top-level files count (LuaDNS semantics): ``<zone>.lua``, ``<zone>.bind`` or ``<zone>.zone``,
with optional ``<zone>.clones`` and ``<zone>.yml`` beside them.  ``templates/`` and ``templates.lua``
belong to the Lua evaluator; everything else is skipped and listed as such.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path


from publisher.model import ERROR, WARNING, Finding, printable

LUA = "lua"
BIND = "bind"
ZONE_SUFFIXES = {".lua": LUA, ".bind": BIND, ".zone": BIND}
_COMPANION_SUFFIXES = (".clones", ".yml", ".yaml")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$|^\*$")

# Bounds on what the repository can make the reader open (every file in it is hostile).
MAX_ZONE_FILE_BYTES = 64 << 20  # a zone file with everything it $INCLUDEs (about 1.3M records)
MAX_COMPANION_BYTES = 1 << 20  # a .clones or .yml file
MAX_SETTINGS_DEPTH = 16  # nesting of YAML collections in a .yml


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


@dataclass
class ReadLog:
    """What one read of a zone looked at besides the zone file's bytes, for the evaluation cache
    (``publisher.zone.evaluation_cache``): every path an $INCLUDE could resolve to (absolute, not
    resolved: the cache resolves them again to see whether the answer changed), and every file
    read with its ``os.fstat`` signature (to tell whether it changed while it was read)."""

    probed: list[Path] = field(default_factory=list)
    opened: list[tuple[Path, tuple[int, ...]]] = field(default_factory=list)


def file_signature(status: os.stat_result) -> tuple[int, ...]:
    """What changes when a file's content does (a rewrite in place changes mtime and ctime)."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class RefusedFile(Exception):
    """A repository file the reader does not open, with the finding's code and message.  The
    message names the file, never its content."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def confined_file(path: Path, repo: Path, max_bytes: int, display: str) -> Path:
    """``path`` resolved, once it is known to be a regular file inside ``repo`` (after resolving
    links) of at most ``max_bytes``; RefusedFile otherwise."""
    try:
        resolved = path.resolve()
        mode, size = _stat(resolved)
    except RuntimeError:  # Python < 3.13 reports a symbolic link loop this way
        raise RefusedFile("file-unreadable", f"{display} is a symbolic link loop") from None
    except OSError as error:
        raise RefusedFile("file-unreadable", f"cannot read {display}: {_reason(error)}") from None
    if not _inside(resolved, repo):
        raise RefusedFile("symlink-outside-repository",
                          f"{display} is a symbolic link to a file outside the repository; "
                          "copy the file into the repository instead")
    _check_regular(mode, size, max_bytes, display)
    return resolved


def read_confined(path: Path, repo: Path, max_bytes: int, display: str) -> bytes:
    """The content of ``path`` under the confinement of ``confined_file``, checked again on the
    opened descriptor (no link is followed, a FIFO does not block) and read to at most
    ``max_bytes``."""
    resolved = confined_file(path, repo, max_bytes, display)
    try:
        descriptor = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise RefusedFile("file-unreadable", f"cannot read {display}: {_reason(error)}") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        _check_regular(status.st_mode, status.st_size, max_bytes, display)
        data = handle.read(max_bytes + 1)
    _check_regular(stat.S_IFREG, len(data), max_bytes, display)
    return data


def _stat(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mode, status.st_size


def _check_regular(mode: int, size: int, max_bytes: int, display: str) -> None:
    if not stat.S_ISREG(mode):
        raise RefusedFile("file-not-regular", f"{display} is not a regular file (a directory, device or FIFO)")
    if size > max_bytes:
        raise RefusedFile("file-too-large", f"{display} is larger than the limit of {size_text(max_bytes)}")


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def size_text(count: int) -> str:
    """A byte limit as a message shows it: ``64 MiB``."""
    if count and not count % (1 << 20):
        return f"{count >> 20} MiB"
    if count and not count % (1 << 10):
        return f"{count >> 10} KiB"
    return f"{count} bytes"


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


def discover(repo: Path, max_zone_bytes: int = MAX_ZONE_FILE_BYTES) -> Layout:
    """List the zones of a repository, in file-name order, with their companion files.

    Every file is confined (a regular file inside the repository after resolving links, of
    bounded size); one that is not, or cannot be read, is a finding on its zone, and the other
    zones are still listed.  Findings with zone "" concern the repository as a whole.
    """
    repo = repo.resolve()
    sources: list[ZoneSource] = []
    skipped: list[str] = []
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    zone_bases: dict[str, str] = {}  # zone file name without suffix -> origin
    companions: list[str] = []
    entries = sorted(repo.iterdir(), key=lambda p: p.name)
    for entry in entries:
        name = entry.name
        shown = printable(name)
        if name.startswith("."):
            continue
        if entry.is_dir():
            if name != "templates":
                skipped.append(shown + "/")
            continue
        suffix = entry.suffix
        if name == "templates.lua":
            continue  # read by the Lua evaluator
        if suffix in _COMPANION_SUFFIXES:
            companions.append(name)  # read with their zone
            continue
        kind = ZONE_SUFFIXES.get(suffix)
        if kind is None:
            skipped.append(shown)
            continue
        origin = origin_from_file_name(name)
        zone_bases[name.rsplit(".", 1)[0]] = printable(origin)
        problem = "the file name is not valid UTF-8" if shown != name else zone_name_problem(origin)
        if problem:
            findings.append(Finding(ERROR, "invalid-zone-file-name", printable(origin), shown, 0,
                                    f"{problem}; a zone file is named <zone>{printable(suffix)}, "
                                    f"e.g. example.com{printable(suffix)}"))
            continue
        try:
            confined_file(entry, repo, max_zone_bytes, name)
        except RefusedFile as refused:
            findings.append(Finding(ERROR, refused.code, origin, name, 0, str(refused)))
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
    findings += (_orphan(name, zone_bases) for name in companions if name.rsplit(".", 1)[0] not in zone_bases)
    return Layout(tuple(sources), tuple(skipped), tuple(findings))


# The templates of a repository in run order as (file, bytes), and problems reading them (file, message).
Templates = tuple[tuple[tuple[str, bytes], ...], tuple[tuple[str, str], ...]]


def read_templates(repo: Path) -> Templates:
    """The Lua templates (``templates.lua``, then ``templates/*.lua`` by name), read once for
    every zone of the repository; the problems reading them as (file, message)."""
    candidates = []
    if (repo / "templates.lua").exists():
        candidates.append(repo / "templates.lua")
    folder = repo / "templates"
    if folder.is_dir():
        candidates += sorted((p for p in folder.iterdir() if p.name.endswith(".lua")), key=lambda p: p.name)
    templates, problems = [], []
    root = repo.resolve()
    for path in candidates:
        name = path.relative_to(repo).as_posix()
        if printable(name) != name:
            problems.append((printable(name), f"{printable(name)} has a file name that is not valid UTF-8; "
                                              "rename it (not used)"))
            continue
        try:
            templates.append((name, read_confined(path, root, MAX_ZONE_FILE_BYTES, name)))
        except RefusedFile as refused:
            problems.append((name, f"{refused}; not used"))
    return tuple(templates), tuple(problems)


def _orphan(name: str, zone_bases: dict[str, str]) -> Finding:
    """A ``.clones``/``.yml`` file beside no zone file: a warning on the zone it was probably meant
    for (``example.com.lua.clones`` -> ``example.com.clones``), else on the repository."""
    base, suffix = name.rsplit(".", 1)
    shown = printable(name)
    intended = None
    for candidate in (origin_from_file_name(base).rstrip("."), base.lower()):
        intended = next((b for b in zone_bases if b.lower() == candidate), None)
        if intended is not None:
            break
    message = (f"{shown} belongs to no zone: there is no {printable(base)}.lua, .bind or .zone beside it, "
               "so it is ignored")
    if intended is None:
        return Finding(WARNING, "companion-without-zone", "", shown, 0,
                       message + f"; name it after its zone file, e.g. example.com.{suffix} for example.com.lua")
    return Finding(WARNING, "companion-without-zone", zone_bases[intended], shown, 0,
                   message + f"; rename it {printable(intended)}.{suffix} to apply it to {zone_bases[intended]}")


def _inside(path: Path, repo: Path) -> bool:
    return path == repo or repo in path.parents


def _companion(repo: Path, name: str) -> str | None:
    """The text of the companion file ``name``, None when there is none; RefusedFile when it is
    not a confined, UTF-8 file."""
    path = repo / name
    if not os.path.lexists(path):
        return None
    data = read_confined(path, repo, MAX_COMPANION_BYTES, name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise RefusedFile("file-not-utf8", f"{name} is not valid UTF-8 (line {line})") from None


def _read_clones(repo: Path, zone_file: str, origin: str) -> tuple[tuple[tuple[str, int], ...], list[Finding]]:
    name = zone_file.rsplit(".", 1)[0] + ".clones"
    try:
        text = _companion(repo, name)
    except RefusedFile as refused:
        return (), [Finding(ERROR, refused.code, origin, name, 0, str(refused))]
    if text is None:
        return (), []
    clones, findings = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        clone = text.lower().rstrip(".") + "."
        problem = zone_name_problem(clone)
        if problem or " " in text:
            findings.append(Finding(ERROR, "invalid-clone-name", origin, name, number,
                                    f"{text!r} is not a domain name ({problem or 'one domain per line'})"))
        elif clone == origin:
            findings.append(Finding(WARNING, "clone-of-itself", origin, name, number,
                                    f"{text} clones the zone onto itself; remove this line"))
        else:
            clones.append((clone, number))
    return tuple(clones), findings


class _SettingsError(Exception):
    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def _load_settings(text: str) -> object:
    """``yaml.safe_load`` once the events show no alias (an alias bomb of a few hundred bytes
    expands to gigabytes) and nesting at most ``MAX_SETTINGS_DEPTH`` deep (the composer recurses)."""
    import yaml  # here: a repository without a .yml never needs it (a tenth of a plan's start-up)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent):
                raise _SettingsError("YAML aliases (*name) are not accepted in zone settings; "
                                     "write the values out", event.start_mark.line + 1)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_SETTINGS_DEPTH:
                    raise _SettingsError(f"nested more than {MAX_SETTINGS_DEPTH} levels deep",
                                         event.start_mark.line + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise _SettingsError(f"not valid YAML: {getattr(error, 'problem', None) or 'unreadable'}",
                             (mark.line + 1) if mark else 0) from None
    except (ValueError, OverflowError) as error:  # e.g. a date that does not exist: 2001-02-30
        raise _SettingsError(f"not valid YAML: {error}") from None


def _read_settings(repo: Path, zone_file: str, origin: str) -> tuple[tuple[str, ...], list[Finding]]:
    base = zone_file.rsplit(".", 1)[0]
    for suffix in (".yml", ".yaml"):
        name = base + suffix
        try:
            text = _companion(repo, name)
        except RefusedFile as refused:
            return (), [Finding(ERROR, refused.code, origin, name, 0, str(refused))]
        if text is not None:
            break
    else:
        return (), []
    try:
        settings = _load_settings(text)
    except _SettingsError as error:
        return (), [Finding(ERROR, "invalid-zone-settings", origin, name, error.line, str(error))]
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        return (), [Finding(ERROR, "invalid-zone-settings", origin, name, 1,
                            "zone settings must be a mapping, e.g. 'slaves: [192.0.2.1]'")]
    findings = [Finding(WARNING, "unknown-zone-setting", origin, name, 0,
                        f"unknown setting {_describe(key)} ignored; the documented key is 'slaves'")
                for key in settings if key != "slaves"]
    slaves = settings.get("slaves")
    if slaves is None:
        slaves = []
    elif isinstance(slaves, str):
        slaves = [slaves]
    elif not isinstance(slaves, list):
        findings.append(Finding(ERROR, "invalid-zone-settings", origin, name, 0,
                                f"slaves must be a list of IP addresses, e.g. 'slaves: [192.0.2.1]', "
                                f"not {_describe(slaves)}"))
        return (), findings
    secondaries = []
    for value in slaves:
        try:
            if not isinstance(value, str):
                raise ValueError
            secondaries.append(str(ipaddress.ip_address(value)))
        except ValueError:
            findings.append(Finding(ERROR, "invalid-secondary-address", origin, name, 0,
                                    f"slaves: {_describe(value)} is not an IP address"))
    return tuple(secondaries), findings


def _describe(value: object) -> str:
    """A YAML value for a message: scalars as written, collections by kind (never expanded)."""
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)
