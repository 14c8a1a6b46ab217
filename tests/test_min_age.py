"""A ward month with `[prioritise] min_age = 60` and the age-band remedy on: people aged 60–64 can
be listed, are grouped as 60〜64歳 wherever ages are grouped (the list's make-up, the fairness
audit, a volunteer's sheet), and the report says the list used the remedy."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from contract.storage import read_parquet
from features.groups import age_band
from models.prioritise import Remedy, eligibility, minimum_counts
from pipelines.config import load_config
from pipelines.monthly import excluded_pids, recently_visited, run_month
from pipelines.release import release, released_sheet
from pipelines.web.published import report_section
from reports.recipients import without_figures
from tests.approving import approve_as
from tests.conftest import TEST_SETTINGS

SIXTY = TEST_SETTINGS + """
[prioritise]
min_age = 60

[fairness]
remedy = "age_band_min_share"

[fairness.min_share]
"60〜64歳" = 0.25
"90歳以上" = 0.05
"""


@pytest.fixture(scope="module")
def sixty(ward, tmp_path_factory):
    """A copy of the session ward rerun for its month with min_age 60 and the remedy."""
    root = tmp_path_factory.mktemp("sixty") / "ward"
    shutil.copytree(ward.root, root, symlinks=True)
    (root / "mimamori.toml").write_text(SIXTY, encoding="utf-8")
    cfg = load_config(root / "mimamori.toml", root / "inbox", root / "work", root / "custody", environ={})
    run_month(cfg, ward.month)
    listed = read_parquet(cfg.runs / ward.month / "list.parquet")
    features = read_parquet(cfg.features_dir / f"{ward.month}.parquet")
    return cfg, ward.month, listed.merge(features[["pid", "age"]], on="pid"), features


def test_people_aged_60_to_64_are_listed_with_each_districts_minimum_share(sixty):
    cfg, month, listed, features = sixty
    assert listed["age"].min() >= 60 and listed["age"].between(60, 64).any()
    remedy = Remedy.of(cfg.settings["fairness"])
    ok = eligibility(features, excluded_pids(cfg, month), recently_visited(cfg, month), 60).mask
    bands = age_band(features["age"])
    for district, mine in listed[~listed["exploration"]].groupby("district"):
        eligible_young = int((ok & (features["district"] == district) & (bands == "60〜64歳")).sum())
        need = minimum_counts(len(mine), remedy.min_share)["60〜64歳"]
        assert need >= 0.25 * len(mine) - 1e-9
        # at least its minimum share of the district's ranked slots, or every eligible person of the band
        assert mine["age"].between(60, 64).sum() >= min(need, eligible_young), district


def test_the_report_groups_them_as_60_to_64_and_says_the_list_used_the_remedy(sixty):
    cfg, month, listed, _ = sixty
    html = (cfg.runs / month / "report" / "index.html").read_text(encoding="utf-8")
    assert "60歳以上 / aged 60+" in html
    young = int(listed["age"].between(60, 64).sum())
    makeup = report_section(html, "makeup")
    rows = {r[0].text: [c.text for c in r] for b in makeup if b.kind == "table" for r in b.rows}
    assert "60〜64歳" in rows and "〜59歳" in rows
    assert rows["60〜64歳"][2] == (str(young) if young >= 10 else "<10") or rows["60〜64歳"][2] == "x"
    fairness = report_section(html, "fairness")
    texts = [b.text for b in fairness if b.kind == "text"]
    assert any(t.startswith("今月のリストは是正策「年齢区分ごとの最低割合」を使っています") and "60〜64歳を25%以上" in t
               for t in texts)
    audited = [c.text for b in fairness if b.kind == "table" for r in b.rows for c in r[:1]]
    assert "60〜64歳\naged 60–64" in audited or "60〜64歳 aged 60–64" in [a.replace("\n", " ") for a in audited]


def test_a_volunteers_sheet_shows_the_60_to_64_band(sixty):
    cfg, month, listed, _ = sixty
    for ident in ("A", "B"):
        approve_as(cfg, month, ident, "個人情報保護法第69条第2項第2号")
    release(cfg, month, "coordinator", csv_form="plain")
    release(cfg, month, "minsei", csv_form="plain")
    _, coordinator = released_sheet(cfg, month, "coordinator")
    _, minsei = released_sheet(cfg, month, "minsei")
    bands = coordinator[["rank", "age"]].merge(minsei[["rank", "age_band"]], on="rank")
    young = bands[pd.to_numeric(bands["age"]).between(60, 64)]
    assert len(young) and (young["age_band"] == "60〜64歳").all()
    assert without_figures("62歳") == "60〜64歳" and without_figures("65歳") == "65〜74歳"
