"""Model engines behind one Protocol (see base.py)."""
