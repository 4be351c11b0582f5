-- The built-in service templates behind `local templates = require("templates")`.
--
-- Called as templates:google_workspace(), etc.  Each adds the records the service documents for
-- a custom domain, with names relative to the zone ("" is the apex).  Loaded by the prelude in an
-- empty environment: it sees only the record functions and helpers passed in below.
local R, helpers = ...
local zone = helpers.zone

local T = {}

-- https://support.google.com/a/answer/174125 (the single MX Google documents since 2023)
function T:google_workspace(ttl)
  R.mx("", "smtp.google.com", 1, ttl)
  R.txt("", "v=spf1 include:_spf.google.com ~all", ttl)
end

-- https://docs.github.com/en/pages/configuring-a-custom-domain-for-your-github-pages-site
function T:github_pages(user, ttl)
  for _, ip in ipairs({"185.199.108.153", "185.199.109.153", "185.199.110.153", "185.199.111.153"}) do
    R.a("", ip, ttl)
  end
  for _, ip in ipairs({"2606:50c0:8000::153", "2606:50c0:8001::153", "2606:50c0:8002::153", "2606:50c0:8003::153"}) do
    R.aaaa("", ip, ttl)
  end
  if user ~= nil then R.cname("www", user .. ".github.io", ttl) end
end

-- https://docs.netlify.com/domains-https/custom-domains/configure-external-dns/
function T:netlify(site, ttl)
  R.a("", "75.2.60.5", ttl)
  if site ~= nil then R.cname("www", site .. ".netlify.app", ttl) end
end

-- https://learn.microsoft.com/microsoft-365/admin/get-help-with-domains/create-dns-records-at-any-dns-hosting-provider
function T:office365(verification, mx_host, ttl)
  if verification ~= nil then R.txt("", verification, ttl) end
  if mx_host == nil then mx_host = helpers.gsub(zone, "%.", "-") .. ".mail.protection.outlook.com" end
  R.mx("", mx_host, 0, ttl)
  R.txt("", "v=spf1 include:spf.protection.outlook.com -all", ttl)
  R.cname("autodiscover", "autodiscover.outlook.com", ttl)
  R.cname("sip", "sipdir.online.lync.com", ttl)
  R.cname("lyncdiscover", "webdir.online.lync.com", ttl)
  R.cname("enterpriseregistration", "enterpriseregistration.windows.net", ttl)
  R.cname("enterpriseenrollment", "enterpriseenrollment.manage.microsoft.com", ttl)
  R.srv("_sip._tls", "sipdir.online.lync.com", 443, 100, 1, ttl)
  R.srv("_sipfederationtls._tcp", "sipfed.online.lync.com", 5061, 100, 1, ttl)
end

-- https://documentation.mailgun.com/docs/mailgun/user-manual/get-started/#add-your-domain
function T:mailgun(ttl)
  R.mx("", "mxa.mailgun.org", 10, ttl)
  R.mx("", "mxb.mailgun.org", 10, ttl)
  R.txt("", "v=spf1 include:mailgun.org ~all", ttl)
  R.cname("email", "mailgun.org", ttl)
end

-- https://migadu.com/guides/dns/
function T:migadu(verification, ttl)
  if verification ~= nil then R.txt("", "hosted-email-verify=" .. verification, ttl) end
  R.mx("", "aspmx1.migadu.com", 10, ttl)
  R.mx("", "aspmx2.migadu.com", 20, ttl)
  for i = 1, 3 do
    local key = "key" .. i .. "._domainkey"
    R.cname(key, "key" .. i .. "." .. zone .. "._domainkey.migadu.com", ttl)
  end
  R.txt("", "v=spf1 include:spf.migadu.com -all", ttl)
  R.txt("_dmarc", "v=DMARC1; p=quarantine;", ttl)
  R.cname("autoconfig", "autoconfig.migadu.com", ttl)
  R.srv("_autodiscover._tcp", "autodiscover.migadu.com", 443, 0, 1, ttl)
  R.srv("_submissions._tcp", "smtp.migadu.com", 465, 0, 1, ttl)
  R.srv("_imaps._tcp", "imap.migadu.com", 993, 0, 1, ttl)
  R.srv("_pop3s._tcp", "pop.migadu.com", 995, 0, 1, ttl)
end

-- https://kb.mailbox.org/en/business/domains/setting-up-your-own-domain/
function T:mailbox_org(ttl)
  R.mx("", "mxext1.mailbox.org", 10, ttl)
  R.mx("", "mxext2.mailbox.org", 10, ttl)
  R.mx("", "mxext3.mailbox.org", 20, ttl)
  R.txt("", "v=spf1 include:mailbox.org ~all", ttl)
  for i = 1, 4 do
    local key = "MBO000" .. i .. "._domainkey"
    R.cname(key, key .. ".mailbox.org", ttl)
  end
  R.srv("_submission._tcp", "smtp.mailbox.org", 587, 0, 1, ttl)
  R.srv("_imaps._tcp", "imap.mailbox.org", 993, 0, 1, ttl)
end

-- https://help.shopify.com/en/manual/domains/add-a-domain/connecting-domains/connect-domain-manual
function T:shopify(ttl)
  R.a("", "23.227.38.65", ttl)
  R.cname("www", "shops.myshopify.com", ttl)
end

-- https://wordpress.com/support/domains/connect-existing-domain/ (A records + www CNAME variant)
function T:wordpress(site, ttl)
  R.a("", "192.0.78.24", ttl)
  R.a("", "192.0.78.25", ttl)
  if site ~= nil then R.cname("www", site .. ".wordpress.com", ttl) end
end

return T
