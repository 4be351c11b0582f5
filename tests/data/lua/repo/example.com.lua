-- example.com: the main zone.
local office = {
  { name = "gw",      ip = "192.0.2.1" },
  { name = "printer", ip = "192.0.2.5" },
  { name = "nas",     ip = "192.0.2.6" },
}

a(_a, web_ip)
aaaa("", "2001:DB8::10")
a("www", web_ip, 300)
a("mail.example.com", "192.0.2.25")          -- absolute, no trailing dot
a("smtp.example.com.", "192.0.2.25")         -- absolute with the dot
a("example.com", "192.0.2.11")               -- the zone name itself is the apex

for _, host in ipairs(office) do
  a(host.name .. ".office", host.ip)
end

for i = 1, 4 do
  dual_stack("node" .. i, "192.0.2." .. (20 + i), "2001:db8::" .. (20 + i), 600)
end

ns("", "ns1.example.net")
ns("", "ns2.example.net.")
ns("lab", "ns1.lab-hosting.example.net")
a("lab-gw", "192.0.2.53")

fastmail(_a)
dmarc(_a, "quarantine")

local dkim = "v=DKIM1; k=rsa; p=" .. string.rep("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 8)
txt("google._domainkey", dkim)

srv("_imaps._tcp", "imap.example.net", 993, 0, 1)
srv("_sip._tls", concat("sip", _a), 443, 100, 1, 300)
caa("", "letsencrypt.org")
caa("", "mailto:security@example.com", "iodef")
cname("docs", "example.github.io")
cname("shop", concat("shops", "myshopify.com"))
ignore("_acme-challenge.%", "TXT")
redirect("old", "https://www.example.com/", 1)
forward("info", "owner@example.net")
slave("ns3.example.com", "198.51.100.3")
https("", 1, ".", { alpn = {"h2", "h3"}, port = 443 })
tlsa("_443._tcp.www", 3, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
sshfp("gw.office", 4, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 2)
rr("loc", "LOC", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m")
a("sip", "192.0.2.60", 300)  -- the _sip._tls SRV target
