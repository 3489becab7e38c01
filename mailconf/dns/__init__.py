"""DNS: the records a site must publish (records), DKIM keys (dkim), and live checks of what the world sees
(checks, with spf and lookup)."""
