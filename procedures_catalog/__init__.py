"""Procedure catalogue: data, schema, importer, Vietnamese normalisation and search.

This package never imports ``bot``: it can be used on its own (e.g. by a province's own tools).
"""
