-- Reverse zone for 192.0.2.0/24: owner names are numbers, relative to the zone.
ptr(10, "www.example.com")
ptr(11, "www.example.com")
ptr(25, "mail.example.io")
ptr(53, "sip.example.io")
