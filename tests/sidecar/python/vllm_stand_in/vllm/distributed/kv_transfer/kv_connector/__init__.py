"""Stand-in package: see base.py."""
