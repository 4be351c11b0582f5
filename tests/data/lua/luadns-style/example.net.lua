-- Zone: example.net (the SOA is generated; _a is "example.net")

-- Addresses
a("a.ns", "192.168.10.2")
a("b.ns", "192.168.10.3")
a("mx1", "192.168.10.11")
a("mx2", "192.168.10.12")
a("pbx", "192.168.10.200")
aaaa("", "2001:db8:10::8888")

-- Mail
mx("", concat("mx1", _a), 10)
mx("", concat("mx2", _a), 20)

-- A delegated sub-zone served by our own name servers
ns("osaka", concat("a.ns", _a))
ns("osaka", concat("b.ns", _a))

cname("www", _a)
txt("", "google-site-verification=t3stV4lu3-0nly")
spf("", "v=spf1 a mx ~all")
srv("_sip._tcp", "pbx.example.net", 5060)

-- Every user gets a sub-domain with its own mail exchanger
a("*.user", "192.168.10.100")
mx("*.user", concat("mail", _a))

-- Our own secondaries: NS and A records are created automatically
slave("ns1", "192.168.20.1")
slave("ns2", "192.168.20.2")

-- A third-party secondary that transfers from two addresses: NS only
slave("ns1.secondary-dns.example", "192.168.20.1")
slave("ns1.secondary-dns.example", "192.168.20.2")
