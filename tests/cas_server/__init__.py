"""The tests' CAS server: django-cas-server (a maintained CAS 1/2/3 server with single logout) in a
process of its own, with its own settings and its own SQLite database, never the product's
(``tests/sso_servers.py`` starts it). ``python -m tests.cas_server DIR PORT USERS_JSON``."""
