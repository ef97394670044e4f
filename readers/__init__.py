"""Reader agents at the edge: the agent (PC/SC or simulated card sources, signed-feed sync, store-and-forward),
``decide()``, and the campus simulator. Imports no Django."""
