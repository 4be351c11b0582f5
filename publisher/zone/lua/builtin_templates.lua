-- The built-in service templates behind `local templates = require("templates")`: LuaDNS's system
-- templates, record for record (docs/lua-zone-language.md, "Built-in templates").
--
-- Called as templates:google_workspace(), etc.  Names are relative to the zone ("" is the apex);
-- an optional last argument is the TTL.  Each returns the array of record tables its record
-- calls returned.  No SPF or DMARC record: a domain may have only one `v=spf1` record, so those
-- stay the zone's own.  Loaded by the prelude in an environment holding only `ipairs`: it sees
-- the record functions and the helpers passed in below, nothing else.
local R, helpers = ...
local zone = helpers.zone

local function text(method, what, value)
  if type(value) ~= "string" then
    error("templates:" .. method .. ": " .. what .. " must be a string, got " .. type(value), 3)
  end
  return value
end

local T = {}

function T:google_workspace(ttl)
  return {
    R.cname("mail", "ghs.googlehosted.com", ttl),
    R.cname("calendar", "ghs.googlehosted.com", ttl),
    R.mx("", "aspmx.l.google.com", 1, ttl),
    R.mx("", "alt1.aspmx.l.google.com", 5, ttl),
    R.mx("", "alt2.aspmx.l.google.com", 5, ttl),
    R.mx("", "alt3.aspmx.l.google.com", 10, ttl),
    R.mx("", "alt4.aspmx.l.google.com", 10, ttl),
  }
end

function T:office365(verification, mx_host, ttl)
  mx_host = text("office365", "mx_host (e.g. \"example-com\")", mx_host)
  return {
    R.txt("", verification, ttl),
    R.cname("autodiscover", "autodiscover.outlook.com", ttl),
    R.mx("", mx_host .. ".mail.protection.outlook.com", 0, ttl),
    R.cname("enterpriseregistration", "enterpriseregistration.windows.net", ttl),
    R.cname("enterpriseenrollment", "enterpriseenrollment.manage.microsoft.com", ttl),
    R.cname("sip", "sipdir.online.lync.com", ttl),
    R.cname("lyncdiscover", "webdir.online.lync.com", ttl),
    R.srv("_sip._tls", "sipdir.online.lync.com", 443, 100, 1, ttl),
    R.srv("_sipfederationtls._tcp", "sipfed.online.lync.com", 5061, 100, 1, ttl),
  }
end

function T:github_pages(username, ttl)
  return {R.alias("", text("github_pages", "username", username) .. ".github.io", ttl)}
end

function T:netlify(site, ttl)
  site = text("netlify", "site", site)
  return {
    R.alias("", site .. ".netlify.app", ttl),
    R.cname("www", site .. ".netlify.app", ttl),
  }
end

function T:wordpress(site, ttl)
  return {R.alias("", text("wordpress", "site", site) .. ".wordpress.com", ttl)}
end

function T:shopify(ttl)
  return {
    R.a("", "23.227.38.65", ttl),
    R.cname("www", "shops.myshopify.com", ttl),
  }
end

function T:mailgun(ttl)
  return {
    R.cname("email", "mailgun.org", ttl),
    R.mx("", "mxa.mailgun.org", 10, ttl),
    R.mx("", "mxb.mailgun.org", 10, ttl),
  }
end

function T:mailbox_org(ttl)
  local records = {
    R.mx("", "mxext1.mailbox.org", 10, ttl),
    R.mx("", "mxext2.mailbox.org", 20, ttl),
    R.mx("", "mxext3.mailbox.org", 30, ttl),
  }
  for i = 1, 4 do
    local key = "MBO000" .. i .. "._domainkey"
    records[#records + 1] = R.cname(key, key .. ".mailbox.org", ttl)
  end
  return records
end

function T:migadu(verification, ttl)
  verification = text("migadu", "verification", verification)
  local records = {
    R.mx("", "aspmx1.migadu.com", 10, ttl),
    R.mx("", "aspmx2.migadu.com", 20, ttl),
  }
  for i = 1, 3 do
    records[#records + 1] = R.cname("key" .. i .. "._domainkey", "key" .. i .. "." .. zone .. "._domainkey.migadu.com.", ttl)
  end
  records[#records + 1] = R.txt("", "hosted-email-verify=" .. verification, ttl)
  records[#records + 1] = R.srv("_submissions._tcp", "smtp.migadu.com", 465, 0, 0, ttl)
  records[#records + 1] = R.srv("_imaps._tcp", "imap.migadu.com", 993, 0, 0, ttl)
  return records
end

return T
