"""Findings: the classified flows grouped into problems a person acts on, the coverage
of required rules, and each problem in words."""
