"""Dossiers (hồ sơ): where a citizen's application stands, from its receipt code.

model: the domain types and the status vocabulary; calendar: working-day deadlines;
sources: where statuses come from (local table, a provincial system over HTTP, demo data).
"""
