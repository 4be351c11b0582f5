-- The company's web front ends.
web_v4 = { "192.0.2.10", "192.0.2.11" }
web_v6 = { "2001:db8::10", "2001:db8::11" }

function webfront(name, ttl)
  for _, ip in ipairs(web_v4) do a(name, ip, ttl) end
  for _, ip in ipairs(web_v6) do aaaa(name, ip, ttl) end
end
