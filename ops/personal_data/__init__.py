"""Personal-data queries (R-SEC-2): a written request, the responsible leader's approval, NIC's
review, and the time-limited grant that results — scoped to that request and audited per view."""
