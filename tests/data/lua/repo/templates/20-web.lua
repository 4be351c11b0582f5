-- Web helpers: a host with both address families, and the usual www alias.
function dual_stack(name, v4, v6, ttl)
  a(name, v4, ttl)
  aaaa(name, v6, ttl)
end

function website(target)
  alias("", target)
  cname("www", target)
end
