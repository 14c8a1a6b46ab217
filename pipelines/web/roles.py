"""The web app's roles, in one place (the CLI's `users add --role` and the app read them).

Kept apart from accounts.py so that the CLI can list them without loading argon2 or SQLAlchemy.
"""
from __future__ import annotations

# role -> what the role is for, in the UI's words (Japanese / English)
ROLES: dict[str, tuple[str, str]] = {
    "coordinator": ("コーディネーター（訪問の調整・結果の記録）", "coordinator: plans visits, records outcomes"),
    "approver": ("承認者（公開の承認）", "approver: approves a release"),
    "auditor": ("監査担当（仮名のみ）", "auditor: pseudonymous reports, explanations, audit log"),
    "analyst": ("分析担当", "analyst: run history and month-over-month figures"),
    "custodian": ("管理者（保管区域）", "custodian: keys, releases, accounts"),
}
