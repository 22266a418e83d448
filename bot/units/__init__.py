"""Old communes to new ones: the reorganisation of 1 July 2025 (sắp xếp đơn vị hành chính)."""

from bot.units.lookup import NewUnit, OldUnitMatch, UnitAnswer, UnitIndex, default_index, lookup

__all__ = ["NewUnit", "OldUnitMatch", "UnitAnswer", "UnitIndex", "default_index", "lookup"]
