"""Backups (R-SEC-4): one encrypted archive holding a consistent snapshot of the database, the
photo store and the personal-data basis files, and a restore into an empty system that verifies
everything before it touches anything. ``keys`` finds the key, ``crypto`` encrypts the byte
stream in authenticated chunks, ``archive`` frames the members and the manifest, ``database``
dumps and restores the database, ``stores`` lists and stages the content-addressed file stores,
``services`` holds the rules (``campuscard backup`` / ``campuscard restore``)."""
