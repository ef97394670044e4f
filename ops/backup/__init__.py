"""Backups (R-SEC-4): one encrypted archive holding a consistent snapshot of the database and
the photo store, and a restore into an empty system that verifies everything before it touches
anything. ``keys`` finds the key, ``crypto`` encrypts the byte stream in authenticated chunks,
``archive`` frames the members and the manifest, ``database`` dumps and restores the database,
``services`` holds the rules (``campuscard backup`` / ``campuscard restore``)."""
