"""``/metrics`` for Prometheus (issue 16, Build 3): the deployment's figures read at scrape time
(``collector.py``) with the web workers' own (``ops.instruments``), behind a token or an allowed
network (``views.py``). The metric names are listed in docs/operations.md."""
