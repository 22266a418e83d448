"""Gettext catalogues (vi, en). This package only marks where the .po files live."""
