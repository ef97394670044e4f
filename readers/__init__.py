"""Reader agents at the edge (simulator now; PC/SC later). Imports no Django."""
