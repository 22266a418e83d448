"""Handlers, one module per topic, each with its own Router; all registered here once."""

from __future__ import annotations

from bot.core.router import Router


def all_routers() -> list[Router]:
    """Every router of the bot, in order of precedence for free-text matchers."""
    from handlers import (
        dossiers,
        fallback,
        feedback,
        help,
        language,
        procedures,
        start,
        submission,
        submission_checklist,
        submission_photos,
        unit_choice,
        units,
    )

    return [
        start.router,
        language.router,
        help.router,
        dossiers.router,
        feedback.router,
        unit_choice.router,
        units.router,
        submission.router,
        submission_checklist.router,
        submission_photos.router,
        procedures.router,
        fallback.router,
    ]
