-- Zone: example.org, built from LuaDNS's system templates
local templates = require("templates")
templates:google_workspace()
templates:github_pages("example-user")
txt("_github-pages-challenge-example-user", "0123456789abcdef")
txt("", "v=spf1 include:_spf.google.com ~all")
