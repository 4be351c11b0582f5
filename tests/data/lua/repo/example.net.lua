-- example.net: only built-in service templates.
local templates = require("templates")
templates:google_workspace()
templates:github_pages("example")
txt("", "google-site-verification=abc123")
