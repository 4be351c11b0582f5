-- Reverse zone: names are the last octet
ptr(2, "a.ns.example.net")
ptr(3, "b.ns.example.net")
ptr("11", "mx1.example.net")
ptr(12, concat("mx2", "example.net"))
