"""Rule modules: one rule per file, the file name is the rule id (see server/rules.py)."""
