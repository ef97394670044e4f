"""Live pages (Dash + Plotly) and their auth and scoping."""
