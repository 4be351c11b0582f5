-- example.com: the main zone.  Records are relative to the zone unless they end in the zone name.
webfront("")
webfront("www", 300)
fastmail(_a)
dmarc("quarantine", "dmarc@" .. _a)

cname("docs", "example.github.io")
cname("status", concat("www", _a))
srv("_imaps._tcp", "imap.fastmail.com", 993, 0, 1)
srv("_submission._tcp", "smtp.fastmail.com", 587, 0, 1)
caa("", "letsencrypt.org")
caa("", "mailto:security@example.com", "iodef")

-- A long DKIM key: txt() splits it into 255-octet strings by itself.
txt("mail._domainkey", "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvz3Jw5lH6sQ8tGp7z2c4kQ0rj9Yc"
  .. "xJ2GmB7l8F1fW2m3nP4qR5sT6uV7wX8yZ9aB0cD1eF2gH3iJ4kL5mN6oP7qR8sT9uV0wX1yZ2aB3cD4eF5gH6iJ7kL8mN9o"
  .. "P0qR1sT2uV3wX4yZ5aB6cD7eF8gH9iJ0kL1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eF1gH2iJ3kL4mN5oP6qR7sT8uV9wX0yZ1"
  .. "aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uV2wX3yZ4aB5cD6eF7gH8iJ9kL0mN1oP2qR3sT4uV5wX6yZ7aB8cD9eF0gH1iJ2kL3"
  .. "QIDAQAB")

-- A small cluster, numbered.
for i = 1, 4 do
  a("node" .. i .. ".k8s", "198.51.100." .. (20 + i))
end

-- certbot writes these directly at the servers; never delete them.
ignore("_acme-challenge.%", "TXT")
