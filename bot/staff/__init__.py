"""The staff dashboard (/staff): officers of a commune or ward read and answer citizens' feedback.

- ``auth``: accounts, argon2 passwords, logins (lockout, rate limit), sessions, the audit log;
- ``web``: the aiohttp sub-application, its guard (session, CSRF, roles, security headers) and
  how to add a page (see its docstring); ``web_login``, ``web_inbox`` (+ ``web_filters``),
  ``web_admin``: the pages; ``templates/`` (Jinja2, autoescaped) and ``static/``;
- ``cli``: ``motcua staff create-user | set-password | list-users``.
"""
