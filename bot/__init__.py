"""Một Cửa bot: a chat assistant for the one-stop desk of Vietnamese communes and wards."""

__version__ = "0.1.0"
