-- Reverse zone for 192.0.2.0/24.
local hosts = { [1] = "gw.office", [10] = "www", [25] = "mail" }
for octet, host in pairs(hosts) do
  ptr(octet, concat(host, "example.com"))
end
for i = 21, 24 do
  ptr(i, "node" .. (i - 20) .. ".example.com.")
end
ns("", "ns1.example.net")
