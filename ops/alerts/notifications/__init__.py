"""Alert notifications (issue 16): routing rules → grouped messages → e-mail, WeCom and DingTalk
group robots, HTTP webhooks; rate-limited, retried with backoff, logged per attempt. Everything
here runs in ``campuscard supervise`` (``ops/pipeline/timed.py``), never in the processor: the
processor only writes alerts, and the supervisor finds what to tell from the database."""
