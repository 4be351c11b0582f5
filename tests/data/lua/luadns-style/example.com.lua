-- Zone: example.com
a(_a, "192.0.2.4")
cname("www", _a)
caa("", "letsencrypt.org", "issue")
caa("", "mailto:security@example.com", "iodef")
office_mail(_a)
a_and_aaaa("web", "192.0.2.80", "2001:db8::80", 300)
heroku("shop", "calm-river-1234")


for i, host in ipairs({"alpha", "beta", "gamma"}) do
  a(host, "192.0.2." .. (10 + i))
end
ignore("_acme-challenge.%", "TXT")
