"""Who gets which columns of a released list, worded for them (custody zone only).

One table of recipients (APPI Art. 69(4): what each needs for the visit, and no more; PPC
Q&A 3-3-3 on 民生委員):

| recipient | who | gets | does not get |
|---|---|---|---|
| coordinator | the ward's outreach coordinator (staff) | 宛名番号, name, address, exact age, sex, the rank band 優先度 (「上位0.5%」, not a probability) on the 全体 sheet, reasons with their figures | phone, カナ |
| nurse | the ward's public-health nurses (staff), who also phone | the coordinator's columns on the district sheets, plus フリガナ and phone | the rank band and the ward-wide 全体 sheet |
| minsei | 民生委員, volunteers commissioned by the minister | name, address, 年齢区分, reasons without figures (an age becomes its band, 「介護保険料を4か月分滞納」 becomes 「介護保険料の滞納あり」) | 宛名番号, exact age, sex, arrears months, rank band, the 全体 sheet (a volunteer gets their district's sheets only) |

Every recipient also gets 前回訪問 (the last recorded visit: its date and outcome) and the
entry columns (reports/sheets.py). English reasons and the list's provenance (`source`) are
for auditors: they stay in the run's list and explanation table, not on the sheets.
`recipient_rows` makes the rows both the workbook and the CSV are written from, so the two
never disagree; `outreach_csv` is the CSV's table.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from contract.sources import OUTCOME
from features.catalog import FIGURE_PHRASES, questions
from features.groups import age_band

EXPLORATION_JA, PRIORITY_JA = "探索", "優先"
REASON_SEPARATOR = "、"   # models/explain.py joins a person's phrases with it


@dataclass(frozen=True)
class Recipient:
    columns: tuple[str, ...]   # released columns, in order (reports/sheets.COLUMNS)
    exact_figures: bool        # exact age and arrears months may appear in reasons
    overview: bool             # gets the ward-wide 全体 sheet besides their district sheets


RECIPIENTS: dict[str, Recipient] = {
    "coordinator": Recipient(("rank", "district", "resident_id", "name", "address", "age", "sex", "band",
                              "reasons", "previous_visit"), exact_figures=True, overview=True),
    "nurse": Recipient(("rank", "district", "resident_id", "name_kana", "name", "address", "phone", "age", "sex",
                        "reasons", "previous_visit"), exact_figures=True, overview=False),
    "minsei": Recipient(("rank", "district", "name", "address", "age_band", "reasons", "previous_visit"),
                        exact_figures=False, overview=False),
}

# The contract's first Japanese spelling of each outcome, for what the sheets show.
OUTCOME_JA: dict[str, str] = {}
for _spelling, _canonical in OUTCOME.items():
    if _spelling != _canonical:
        OUTCOME_JA.setdefault(_canonical, _spelling)


def without_figures(reasons: str) -> str:
    """A person's reasons with the figures a volunteer does not need replaced (features/catalog.py
    FIGURE_PHRASES): 「81歳」 → 「75〜84歳」, 「介護保険料を4か月分滞納」 → 「介護保険料の滞納あり」."""
    if not isinstance(reasons, str) or not reasons:
        return reasons
    out = []
    for phrase in reasons.split(REASON_SEPARATOR):
        for pattern, coarse in FIGURE_PHRASES.values():
            found = pattern.match(phrase)
            if found:
                phrase = coarse if coarse is not None else str(age_band(pd.Series([int(found.group(1))]))[0])
                break
        out.append(phrase)
    return REASON_SEPARATOR.join(out)


def previous_visits(visits: pd.DataFrame) -> pd.DataFrame:
    """pid, previous_visit: each person's last recorded visit as 「2026/09/12 不在」 (visits: pid,
    visit_date, outcome as known when the list was made; lake.outcomes_known_at)."""
    if not len(visits):
        return pd.DataFrame({"pid": pd.Series(dtype="str"), "previous_visit": pd.Series(dtype="str")})
    last = visits.sort_values(["pid", "visit_date", "outcome"], kind="stable").drop_duplicates("pid", keep="last")
    text = pd.to_datetime(last["visit_date"]).dt.strftime("%Y/%m/%d") + " " + last["outcome"].map(OUTCOME_JA)
    return pd.DataFrame({"pid": last["pid"].to_numpy(), "previous_visit": text.to_numpy()})


def recipient_rows(frame: pd.DataFrame, recipient: str | Recipient) -> pd.DataFrame:
    """The released rows as `recipient` may see them, in ward rank order: their columns, plus
    「確認したいこと」 (questions) after the reasons and 区分 (pick: 探索/優先) when the frame
    carries reason features / exploration marks; reasons without figures where the recipient
    gets none."""
    spec = RECIPIENTS[recipient] if isinstance(recipient, str) else recipient
    rows = frame.sort_values("rank", kind="stable").reset_index(drop=True)
    columns = [c for c in spec.columns if c in rows.columns or c == "previous_visit"]
    out = rows.reindex(columns=columns).copy()
    if "reasons" in out and not spec.exact_figures:
        out["reasons"] = [without_figures(r) for r in out["reasons"]]
    if "reasons" in out and "reason_features" in rows:
        out.insert(out.columns.get_loc("reasons") + 1, "questions",
                   [questions(list(f) if f is not None else [])[0] for f in rows["reason_features"]])
    if "exploration" in rows:
        out["pick"] = [EXPLORATION_JA if bool(x) else PRIORITY_JA for x in rows["exploration"].fillna(False)]
    return out

