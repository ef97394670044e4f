"""Muster and presence (issue 17): who is inside a building, roll calls at assembly-point readers."""
