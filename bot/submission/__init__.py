"""Helping citizens submit online: the portal guide, the document checklist, photos to PDF."""
