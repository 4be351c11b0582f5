-- A small zone for the service tests; the tests rewrite the www address.
ns("", "ns1.example.net.")
ns("", "ns2.example.net.")
a("www", "192.0.2.1")
