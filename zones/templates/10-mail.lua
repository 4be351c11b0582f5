-- Helpers shared by every Lua zone of this repository (LuaDNS runs templates before each zone).

-- Fastmail for a domain: MX pair, SPF, DKIM via CNAMEs.
function fastmail(domain)
  mx(domain, "in1-smtp.messagingengine.com", 10)
  mx(domain, "in2-smtp.messagingengine.com", 20)
  txt(domain, "v=spf1 include:spf.messagingengine.com ?all")
  for i = 1, 3 do
    cname(concat("fm" .. i .. "._domainkey", domain), "fm" .. i .. "." .. domain .. ".dkim.fmhosted.com")
  end
end

-- A DMARC policy record.
function dmarc(policy, report_to)
  txt("_dmarc", "v=DMARC1; p=" .. policy .. "; rua=mailto:" .. report_to)
end
