-- Mail helpers shared by every zone of this repository.
function fastmail(domain)
  mx(domain, "in1-smtp.messagingengine.com", 10, default_mx_ttl)
  mx(domain, "in2-smtp.messagingengine.com", 20, default_mx_ttl)
  for i = 1, 3 do
    cname(concat("fm" .. i .. "._domainkey", domain), "fm" .. i .. "." .. domain .. ".dkim.fmhosted.com")
  end
  txt(domain, "v=spf1 include:spf.messagingengine.com ?all")
end

function dmarc(domain, policy)
  txt(concat("_dmarc", domain), "v=DMARC1; p=" .. (policy or "none") .. "; rua=mailto:dmarc@" .. domain)
end
