-- Legacy root templates.lua: still run, before templates/*.lua.
default_mx_ttl = 3600
web_ip = "192.0.2.10"
