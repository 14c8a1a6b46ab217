"""The coordinator's review of a month's list before its release, as the approvers sign it.

Before a list is released, the coordinator who knows the district may skip a listed person
(in hospital, already supported, moved: with a reason) or add a person the list missed (with a
reason). The web app keeps the decisions as they are being made; when the coordinator submits
them, `submit_review` writes one snapshot into the custody zone (<custody>/reviews/<month>.json,
pseudonyms and reasons only). Every approval given after that signs the snapshot's SHA-256 with
the list's (pipelines/release.py), and the release applies exactly that snapshot
(`reviewed_list`): a change after an approval voids it, so approvers always sign what will be
released. A month with no submitted review releases the list as the batch made it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from contract.months import check_month
from contract.storage import read_json, write_json
from pipelines.config import Config
from pipelines.custody import private_dir

ADDED_SOURCE = "coordinator"                 # the list's `source` of a person a coordinator added
ADDED_BAND, ADDED_BAND_EN = "追加", "added"   # shown instead of a rank band (no model ranked them)


@dataclass(frozen=True)
class Review:
    """A submitted review: skipped (pid, reason) and added (pid, district, reason), sorted."""
    month: str
    skips: tuple[tuple[str, str], ...] = ()
    adds: tuple[tuple[str, str, str], ...] = ()
    submitted_by: str = ""
    submitted: str = ""

    def body(self) -> dict:
        return {"month": self.month, "skips": [list(s) for s in self.skips], "adds": [list(a) for a in self.adds],
                "submitted_by": self.submitted_by, "submitted": self.submitted}

    def unsubmitted(self, submitted: "Review | None") -> bool:
        """Whether these decisions (being made) differ from the submitted snapshot; with none
        submitted, whether any skip or addition has been made."""
        if submitted is None:
            return bool(self.skips or self.adds)
        return (self.skips, self.adds) != (submitted.skips, submitted.adds)

    def digest(self) -> str:
        """The SHA-256 an approval signs: of the canonical JSON of the whole snapshot."""
        text = json.dumps(self.body(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def review_file(cfg: Config, month: str) -> Path:
    return cfg.custody / "reviews" / f"{check_month(month)}.json"


def submit_review(cfg: Config, review: Review) -> Path:
    """Write the submitted snapshot (replacing an earlier one: approvals of that one become void)."""
    path = review_file(cfg, review.month)
    private_dir(path.parent)
    write_json(review.body(), path)
    return path


def submitted_review(cfg: Config, month: str) -> Review | None:
    """The month's submitted review, or None when the coordinator has submitted none."""
    path = review_file(cfg, month)
    if not path.exists():
        return None
    body = read_json(path)
    return Review(body["month"], tuple(tuple(s) for s in body["skips"]), tuple(tuple(a) for a in body["adds"]),
                  body.get("submitted_by", ""), body.get("submitted", ""))


def reviewed_list(listed: pd.DataFrame, review: Review | None) -> pd.DataFrame:
    """The list the release names: the batch's list without the skipped people, with the added
    ones after everyone ranked (their rank continues the ward's ranks in the order added, their
    reason the coordinator's own words, no rank band: no model ranked them)."""
    if review is None:
        return listed
    skipped = {pid for pid, _ in review.skips}
    kept = listed[~listed["pid"].isin(skipped)]
    new = [(pid, district, reason) for pid, district, reason in review.adds if pid not in set(listed["pid"])]
    if not new:
        return kept.reset_index(drop=True)
    start = int(listed["rank"].max()) if len(listed) else 0
    added = pd.DataFrame({
        "pid": [p for p, _, _ in new], "rank": np.arange(start + 1, start + 1 + len(new), dtype="int64"),
        "district": [d for _, d, _ in new], "score": np.nan, "top_percent": np.nan,
        "band": ADDED_BAND, "band_en": ADDED_BAND_EN,
        "reasons": [f"担当者による追加：{r}" for _, _, r in new], "reasons_en": "added by the coordinator",
        "reason_features": [[] for _ in new], "reason_contributions": [[] for _ in new], "exploration": False,
        "source": ADDED_SOURCE})
    for column in listed.columns.difference(added.columns):   # model_version, key_id: as the list's
        added[column] = listed[column].iloc[0] if len(listed) else ""
    return pd.concat([kept, added[listed.columns]], ignore_index=True)


def void_reason(signed: str | None, current: str | None) -> str | None:
    """Why an approval that signed review digest `signed` does not cover the current snapshot."""
    if signed == current:
        return None
    return ("the coordinator's review was submitted after it" if signed is None
            else "the coordinator's review changed since it (resubmitted)")


def release_record(review: Review | None, released: pd.DataFrame) -> dict:
    """What a release record says of the review it applied (nothing when there was none)."""
    if review is None:
        return {}
    return {"review": {"sha256": review.digest(), "submitted_by": review.submitted_by, "skipped": len(review.skips),
                       "added": int((released["source"] == ADDED_SOURCE).sum())}}
