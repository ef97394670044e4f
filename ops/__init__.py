"""Campus card operations: the Django project (card management, the source of truth)."""
