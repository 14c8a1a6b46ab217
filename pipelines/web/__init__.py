"""The local web app (`mimamori serve`): coordinators, approvers, auditors, analysts and custodians.

It reads the run folders through the catalogue (pipelines/catalog/) and never recomputes a
stage's result; its own state (accounts, sessions, visits entered) is in a SQLAlchemy database,
SQLite in the custody zone unless `[web] database` names another URL.

    app.py          create_app: the app, its templates, login/logout and the home page
    pages.py        what every page shares: the login, role checks, CSRF-checked forms, rendering
    roles.py        the roles (ROLES)
    db.py           the tables and the engine (database_url)
    accounts.py     users, argon2 password hashes, roles
    security.py     sessions that expire, CSRF tokens, login throttling, checked path parameters
    auditor.py      the auditor's pages (pseudonymous only)
    coordinator.py  the coordinator's pages (names only after release, every view logged)
    visits.py       visits entered in the app, and their export as next month's outreach_outcomes
    serving.py      the app served for real in a background thread (browser tests, screenshots)
    screenshots.py  `python -m pipelines.web.screenshots`: the main pages as PNGs for docs/
"""
