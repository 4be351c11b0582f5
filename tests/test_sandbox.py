"""The Lua sandbox holds: each attack fails alone with a clear finding, and the next zone (in the
same batch, hence the same or a fresh worker) still evaluates."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.zone.lua_zone import evaluate_lua_zones
from publisher.zone.sandbox import Chunk, LuaSandbox, SandboxLimits

# Small limits keep the attacks quick; the wall clock must exceed the Lua CPU limit so the hook,
# not the parent, stops the Lua-level loops.
LIMITS = SandboxLimits(cpu_seconds=1.0, memory_bytes=64 << 20, max_records=1000, wall_seconds=6.0)

HEALTHY = 'a("ok", "192.0.2.7")\nlocal s = ("abc"):upper() .. string.rep("x", 3)\ntxt("s", s)\n'


def run_attack(tmp_path: Path, attack: str, limits: SandboxLimits = LIMITS):
    """Evaluate the attack zone, then a healthy zone in the same batch; return both results."""
    (tmp_path / "attack.test.lua").write_text(attack)
    (tmp_path / "healthy.test.lua").write_text(HEALTHY)
    attacked, healthy = evaluate_lua_zones(
        tmp_path, [(tmp_path / "attack.test.lua", "attack.test."), (tmp_path / "healthy.test.lua", "healthy.test.")],
        limits=limits)
    assert healthy.zone is not None and healthy.findings == (), [f.to_text() for f in healthy.findings]
    assert [(r.name, r.data) for r in healthy.zone.records] == [("ok.healthy.test.", "192.0.2.7"),
                                                                ("s.healthy.test.", '"ABCxxx"')]
    return attacked


def single_error(result):
    assert result.zone is None
    errors = [f for f in result.findings if f.is_error]
    assert len(errors) == 1, [f.to_text() for f in result.findings]
    return errors[0]


# ----------------------------------------------------------------------------- CPU

@pytest.mark.parametrize("attack, line", [
    ("a('x', '192.0.2.1')\nwhile true do end\n", 2),
    ("local ok = pcall(function()\n  while true do end\nend)\nwhile true do pcall(function() while true do end end) end\n", 2),
    ("while true do\n  pcall(error, 'x')\nend\n", 2),
    ("local ok, err = xpcall(function() while true do end end, function(e) while true do end end)\n"
     "a('after', '192.0.2.1')\n", 1),
])
def test_endless_loops_stop_even_inside_pcall(tmp_path, attack, line):
    finding = single_error(run_attack(tmp_path, attack))
    assert finding.code == "lua-cpu-limit"
    assert "CPU time limit of 1 s exceeded" in finding.message
    assert (finding.file, finding.line) == ("attack.test.lua", line)


@pytest.mark.parametrize("attack", [
    "local co = coroutine.create(function()\n while true do end\nend)\ncoroutine.resume(co)\nwhile true do end\n",
    "local f = coroutine.wrap(function()\n while true do end\nend)\npcall(f)\nwhile true do end\n",
    "while true do\n coroutine.resume(coroutine.create(function() while true do end end))\nend\n",
])
def test_endless_loops_inside_coroutines_stop(tmp_path, attack):
    finding = single_error(run_attack(tmp_path, attack))
    assert finding.code == "lua-cpu-limit"


# ----------------------------------------------------------------------------- memory

@pytest.mark.parametrize("attack", [
    'local s = string.rep("x", 2^30)\n',
    'local s = "x"\nfor i = 1, 40 do s = s .. s end\n',
    'local t = {}\nlocal i = 0\nwhile true do i = i + 1; t[i] = string.rep("x", 1000) .. i end\n',
    'local t = {}\nfor i = 1, 1e9 do t[i] = i end\n',
    'local ok = true\nlocal t = {}\nwhile true do pcall(function() t[#t + 1] = string.rep("y", 1e6) .. #t end) end\n',
])
def test_memory_bombs_fail_alone(tmp_path, attack):
    finding = single_error(run_attack(tmp_path, attack))
    assert finding.code in ("lua-memory-limit", "lua-cpu-limit")
    if finding.code == "lua-memory-limit":
        assert "memory limit of 64 MiB exceeded" in finding.message


def test_record_count_is_limited(tmp_path):
    finding = single_error(run_attack(tmp_path, 'for i = 1, 5000 do\n  a("h" .. i, "192.0.2.1")\nend\n'))
    assert finding.code == "lua-record-limit"
    assert "more than 1000 records" in finding.message
    assert finding.line == 2


# ----------------------------------------------------------------------------- C-level hangs

def test_pathological_pattern_is_killed_by_the_process_limit(tmp_path):
    limits = SandboxLimits(cpu_seconds=1.0, memory_bytes=64 << 20, max_records=1000, wall_seconds=3.0)
    attack = 'a("x", "192.0.2.1")\nstring.find(string.rep("a", 100000), string.rep("a*", 40) .. "b")\n'
    finding = single_error(run_attack(tmp_path, attack, limits))
    assert finding.code in ("lua-time-limit", "lua-process-limit")
    assert finding.file == "attack.test.lua"


def test_a_killed_worker_is_replaced_for_the_next_zone():
    limits = SandboxLimits(cpu_seconds=1.0, memory_bytes=64 << 20, wall_seconds=2.0)
    hang = Chunk("hang.lua", b'string.find(string.rep("a", 50000), string.rep("a*", 30) .. "b")')
    fine = Chunk("fine.lua", b'a("", "192.0.2.1")')
    with LuaSandbox(limits) as sandbox:
        first = sandbox.evaluate("one.test.", [fine])
        killed = sandbox.evaluate("two.test.", [hang])
        again = sandbox.evaluate("three.test.", [fine])
    assert (first.status, first.count) == ("ok", 1)
    assert (killed.status, killed.limit) == ("killed", "wall")
    assert (again.status, again.count) == ("ok", 1)


# ----------------------------------------------------------------------------- escapes

@pytest.mark.parametrize("name", ["os", "io", "debug", "package", "load", "loadstring", "dofile", "loadfile",
                                  "collectgarbage", "setfenv", "getfenv", "python", "module"])
def test_dangerous_globals_do_not_exist(tmp_path, name):
    result = run_attack(tmp_path, f'if {name} ~= nil then a("leak", "192.0.2.1") end\na("fine", "192.0.2.2")\n')
    assert [r.name for r in result.zone.records] == ["fine.attack.test."]


def test_string_dump_and_bytecode_are_refused(tmp_path):
    result = run_attack(tmp_path, 'if string.dump == nil and ("").dump == nil then a("no-dump", "192.0.2.1") end\n')
    assert [r.name for r in result.zone.records] == ["no-dump.attack.test."]
    finding = single_error(run_attack(tmp_path, 'local f = load("\\27Lua")\n'))
    assert finding.code == "lua-undefined-function" and finding.line == 1


def test_a_precompiled_zone_file_is_refused(tmp_path):
    (tmp_path / "attack.test.lua").write_bytes(b"\x1bLuaT\x00\x19\x93\r\n\x1a\n")
    (result,) = evaluate_lua_zones(tmp_path, [(tmp_path / "attack.test.lua", "attack.test.")], limits=LIMITS)
    assert single_error(result).code == "lua-bytecode"


def test_os_getenv_is_unreachable(tmp_path):
    finding = single_error(run_attack(tmp_path, 'txt("env", os.getenv("HOME"))\n'))
    assert finding.line == 1 and "os" in finding.message


def test_require_only_knows_the_builtin_templates(tmp_path):
    finding = single_error(run_attack(tmp_path, 'local os = require("os")\n'))
    assert finding.code == "lua-runtime-error"
    assert 'only require("templates")' in finding.message


@pytest.mark.parametrize("attack", [
    'getmetatable("").__index = function() return "pwned" end\n',
    'rawset(getmetatable(""), "__index", {})\n',
    'setmetatable("", {})\n',
])
def test_the_string_metatable_is_locked(tmp_path, attack):
    finding = single_error(run_attack(tmp_path, attack))
    assert finding.line == 1


def test_getmetatable_of_a_string_is_harmless(tmp_path):
    result = run_attack(tmp_path, 'if getmetatable("") == false then a("locked", "192.0.2.1") end\n')
    assert [r.name for r in result.zone.records] == ["locked.attack.test."]


def test_changes_to_library_tables_stay_in_their_zone(tmp_path):
    attack = ('string.rep = nil\nrawset(string, "upper", nil)\ntable.concat = nil\nleaked_global = 1\n'
              'function string.shout(s) return s:upper() .. "!" end\n')
    result = run_attack(tmp_path, attack)  # run_attack checks the next zone still has rep/upper
    assert result.zone is not None and result.findings == ()


def test_a_zone_can_extend_string_for_its_own_methods(tmp_path):
    result = run_attack(tmp_path, 'function string.host(s) return s .. "-host" end\na(("web"):host(), "192.0.2.1")\n')
    assert [r.name for r in result.zone.records] == ["web-host.attack.test."]


def test_globals_do_not_leak_between_zones(tmp_path):
    (tmp_path / "one.test.lua").write_text('shared = "one"\na = nil\n')
    (tmp_path / "two.test.lua").write_text('if shared == nil then a("clean", "192.0.2.1") end\n')
    one, two = evaluate_lua_zones(tmp_path, [(tmp_path / "one.test.lua", "one.test."),
                                             (tmp_path / "two.test.lua", "two.test.")], limits=LIMITS)
    assert one.zone is not None
    assert [r.name for r in two.zone.records] == ["clean.two.test."]


@pytest.mark.parametrize("attack", [
    'local x = python.eval("1")\n',
    'local x = ("").__class__.__mro__\n',
    'local x = a.__globals__\n',
    'local x = _G.python.builtins\n',
])
def test_python_objects_are_unreachable(tmp_path, attack):
    finding = single_error(run_attack(tmp_path, attack))
    assert finding.line == 1


def test_no_value_in_the_environment_is_a_python_object(tmp_path):
    # Walk every value reachable from the environment: all must be plain Lua types.
    attack = '''
local seen, bad = {}, 0
local function walk(v)
  if type(v) == "userdata" then bad = bad + 1 end
  if type(v) ~= "table" or seen[v] then return end
  seen[v] = true
  for k, x in pairs(v) do walk(k); walk(x) end
end
walk(_G)
if bad == 0 then a("clean", "192.0.2.1") end
'''
    result = run_attack(tmp_path, attack)
    assert [r.name for r in result.zone.records] == ["clean.attack.test."]


def test_gc_metamethods_are_refused(tmp_path):
    finding = single_error(run_attack(tmp_path, 'setmetatable({}, {__gc = function() while true do end end})\n'))
    assert "__gc" in finding.message and finding.line == 1


def test_kernel_cpu_limit_ends_a_c_level_hang_before_the_wall_clock(tmp_path):
    # RLIMIT_CPU (cpu_seconds * 1.5 + 5 s of CPU) fires long before this generous wall clock.
    limits = SandboxLimits(cpu_seconds=0.5, memory_bytes=64 << 20, wall_seconds=120.0)
    attack = 'string.find(string.rep("a", 100000), string.rep("a*", 40) .. "b")\n'
    finding = single_error(run_attack(tmp_path, attack, limits))
    assert finding.code == "lua-process-limit"
    assert "too much CPU time" in finding.message


def test_worker_environment_has_no_secrets(tmp_path, monkeypatch):
    # Even a full escape from Lua would find no secrets in the worker's environment.
    monkeypatch.setenv("PUBLISHER_TEST_SECRET", "hunter2")
    with LuaSandbox(LIMITS) as sandbox:
        sandbox.evaluate("env.test.", [Chunk("env.lua", b'a("", "192.0.2.1")')])
        environ = Path(f"/proc/{sandbox._process.pid}/environ").read_bytes()
    assert b"hunter2" not in environ and b"PUBLISHER_TEST_SECRET" not in environ


def test_a_huge_error_message_is_truncated(tmp_path):
    finding = single_error(run_attack(tmp_path, 'error(string.rep("x", 1e7))\n'))
    assert finding.line == 1 and len(finding.message) < 1100


# ----------------------------------------------------------------------------- Lua 5.1, as LuaDNS runs it

# Each snippet sets `out` (a string); the same file runs in Debian's lua5.1 and in the sandbox, and
# what `out` holds must be the same.  Errors are caught with pcall, as a zone file would see them.
LUA51_SNIPPETS = [
    'out = "p" .. 2^3', 'out = "n" .. 10/2', "out = tostring(2^53)", 'out = string.format("%s", 4/2)',
    'out = "192.0.2." .. (7*4/2)', "out = tostring(1e15) .. ' ' .. tostring(1e16) .. ' ' .. tostring(0.1)",
    "out = tostring(1/3) .. ' ' .. tostring(-1.5) .. ' ' .. tostring(2^63)", "out = tostring(1/0) .. ' ' .. tostring(-1/0)",
    "out = 7 % 3 .. ' ' .. -7 % 3 .. ' ' .. 7.5 % 2 .. ' ' .. 2^-1",
    'out = string.format("%d|%5.2f|%x|%g|%q|%5s|%-5s|", 3.7, 3.14159, 255, 1e20, "a\\nb\\"c", "ab", "ab")',
    "out = _VERSION", "out = tostring(unpack == nil) .. tostring(table.unpack == nil)",
    "out = table.concat({unpack({1, 2, 3})}, ',')", "out = tostring(select('#', unpack({1, nil, 3})))",
    "out = table.getn({1, 2, 3}) .. math.mod(7, 3) .. math.pow(2, 10) .. math.fmod(-7, 3) .. table.maxn({1, [10] = 2})",
    "out = math.floor(-3.5) .. ' ' .. math.ceil(3.2) .. ' ' .. math.max(1, 5, 3) .. ' ' .. math.huge .. ' ' .. math.pi",
    "out = tostring(tonumber('0x10')) .. tostring(tonumber('10', 2)) .. tostring(tonumber(' 12 ')) .. tostring(tonumber('1e2')) .. tostring(tonumber('z'))",
    'out = ("abc"):upper() .. string.rep("ab", 3) .. string.sub("hello", -3) .. string.len("xyz") .. #"four"',
    'out = string.gsub("hello world", "o", "0") .. select(2, string.gsub("hello world", "o", "0"))',
    'out = table.concat({string.find("a.b", ".", 1, true)}, ",") .. table.concat({string.match("key=val", "(%w+)=(%w+)")}, ",")',
    'out = string.byte("A") .. string.char(72, 105) .. string.reverse("abc") .. string.lower("ABC")',
    'out = "" for w in string.gfind("one two", "%a+") do out = out .. w .. ";" end',
    'out = "" for w in string.gmatch("k1=v1, k2=v2", "(%w+)=(%w+)") do out = out .. w end',
    'local t = {} table.insert(t, "b") table.insert(t, 1, "a") table.sort(t, function(x, y) return x > y end) out = table.concat(t)',
    'out = "" table.foreach({10, 20}, function(k, v) out = out .. k .. v end) table.foreachi({30}, function(i, v) out = out .. v end)',
    'out = "" for k, v in pairs({10, 20, 30}) do out = out .. k .. "=" .. v .. " " end',
    'out = "" for k in pairs({x = 1, y = 2, z = 3, w = 4, host = 5, mail = 6}) do out = out .. k end',
    "out = select(2, 'a', 'b', 'c') .. select('#', 'a', nil)",
    "out = tostring(nil) .. tostring(true) .. type(unpack) .. type(nil) .. tostring(1 == 1.0)",
    "out = string.format('%s %s', 10 / 2, 3 * 1.5) .. string.format('%.14g', 0.1 + 0.2)",
    'local ok, e = pcall(function() local x = nil; return x.y end) out = e',
    'local ok, e = pcall(function() return 1 + {} end) out = e',
    'local ok, e = pcall(function() return #nil end) out = e',
    'local ok, e = pcall(function() return ("x"):bad() end) out = e',
    'local ok, e = pcall(function() return undefinedfn() end) out = e',
    'local ok, e = pcall(function() return "a" < 1 end) out = e',
    'local ok, e = pcall(function() return ("x") .. {} end) out = e',
    'local ok, e = pcall(string.rep) out = e',
    'local ok, e = pcall(function() error("boom") end) out = e',
    'local ok, e = pcall(function() error({code = 1}) end) out = type(e) .. e.code',
    'local ok, e = pcall(error, "plain", 0) out = e',
    'local ok, e = pcall(function() local t = setmetatable({}, {__index = function(t, k) return k .. "!" end}) return t.x end) out = e',
    'local f = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end) out = f(1) .. "," .. f(10)',
    'local f = coroutine.wrap(function() error("inside") end) local ok, e = pcall(function() f() end) out = e',
    'local co = coroutine.create(function() error("x") end) local ok, e = coroutine.resume(co) out = tostring(ok) .. e .. coroutine.status(co)',
    'local ok, e = xpcall(function() error("h") end, function(m) return "handled: " .. m end) out = e',
    'local t = setmetatable({}, {__tostring = function() return "custom" end}) out = tostring(t)',
    'out = string.format("%5.1f", 2^0.5) .. string.format("%o", 8) .. string.format("%e", 12345.678)',
]


def _txt_text(data: str) -> str:
    import dns.rdata

    rdata = dns.rdata.from_text("IN", "TXT", data)
    return b"".join(rdata.strings).decode("utf-8", "surrogateescape")


def test_zone_code_sees_what_lua51_gives(tmp_path):
    import shutil
    import subprocess

    lua51 = shutil.which("lua5.1")
    if lua51 is None:
        pytest.skip("Debian's lua5.1 (the reference interpreter) is not installed: apt-get install lua5.1")
    zones, expected = [], {}
    for number, snippet in enumerate(LUA51_SNIPPETS):
        path = tmp_path / f"s{number}.test.lua"  # the same chunk name in both, so messages compare
        path.write_text(snippet + "\nio.write(out)\n")
        reference = subprocess.run([lua51, path.name], cwd=tmp_path, capture_output=True, text=True, timeout=10)
        assert reference.returncode == 0, (snippet, reference.stderr)
        expected[number] = reference.stdout
        path.write_text(snippet + '\ntxt("out", out)\n')
        zones.append((path, f"s{number}.test."))
    for number, result in enumerate(evaluate_lua_zones(tmp_path, zones, limits=LIMITS)):
        assert result.zone is not None, (LUA51_SNIPPETS[number], [f.to_text() for f in result.findings])
        (record,) = result.zone.records
        assert _txt_text(record.data) == expected[number], LUA51_SNIPPETS[number]


@pytest.mark.parametrize("source", [
    'out = 7 // 2', 'goto done', 'local x <const> = 1', 'out = 1 & 2', 'out = "\\u{48}"',
])
def test_lua53_syntax_is_refused_as_lua51_refuses_it(tmp_path, source):
    import shutil
    import subprocess

    if shutil.which("lua5.1") is None:
        pytest.skip("Debian's lua5.1 (the reference interpreter) is not installed")
    (tmp_path / "example.com.lua").write_text(source + "\n")
    reference = subprocess.run(["lua5.1", "example.com.lua"], cwd=tmp_path, capture_output=True, text=True, timeout=10)
    (result,) = evaluate_lua_zones(tmp_path, [(tmp_path / "example.com.lua", "example.com.")], limits=LIMITS)
    if reference.returncode == 0:  # "\u{48}" is "u{48}" in 5.1: no error either
        assert result.zone is not None and not result.has_errors
    else:
        assert result.zone is None and result.findings[0].line == 1
