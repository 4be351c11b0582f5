-- A zone in the style of LuaDNS's documentation, with the in-zone targets real repositories
-- leave without an address: BIND serves it ("has no address records"), so it lints with
-- warnings only (tests/test_server_verdicts.py runs it through named-checkzone and kzonecheck).
a(_a, "192.0.2.10")
a("www", "192.0.2.10")
mx(_a, concat("mail", _a))               -- mail.example.org. has no A/AAAA here
mx("*.user", concat("mail", _a))         -- as LuaDNS's example.net.lua does
srv("_sip._tcp", concat("sip", _a), 5060, 10, 5)  -- nor does sip.example.org.
mx("a.mx", concat("a.mx", _a))
cname("blog", concat("www", _a))
cname("docs", "example.github.io")
txt(_a, "v=spf1 mx -all")
