-- Helpers run before every zone (LuaDNS's legacy single templates file).

function office_mail(domain, ttl)
  local ttl = ttl or 3600
  mx(domain, "aspmx.l.google.com", 1, ttl)
  mx(domain, "alt1.aspmx.l.google.com", 5, ttl)
  mx(domain, "alt2.aspmx.l.google.com", 5, ttl)
  cname(concat("calendar", domain), "ghs.googlehosted.com", ttl)
  cname(concat("mail", domain), "ghs.googlehosted.com", ttl)
  -- txt(domain, "v=spf1 include:_spf.google.com ~all", ttl)
end

function a_and_aaaa(domain, ipv4, ipv6, ttl)
  a(domain, ipv4, ttl)
  aaaa(domain, ipv6, ttl)
end
