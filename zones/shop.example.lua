-- A shop hosted elsewhere, using the built-in service templates.
local templates = require("templates")
templates:shopify()
templates:google_workspace()
