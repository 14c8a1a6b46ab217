"""Features of change (features/change.py): each against a plain definition over generated
histories, and point-in-time through the lake (a change after the as-of month is not seen)."""
import numpy as np
import pandas as pd
from hypothesis import given, strategies as st

from contract.months import month_end
from features import change
from features.catalog import CATALOG, describe
from pipelines.catalog import lake
from pipelines.catalog.features import features_from_lake
from contract.storage import write_json, write_parquet

AS_OF = "2026-06"
PIDS = [f"{i:032x}" for i in range(6)]
months_ago = st.lists(st.lists(st.integers(0, 40), max_size=5), min_size=len(PIDS), max_size=len(PIDS))


def _events(ago_per_person, column):
    as_of = month_end(AS_OF)
    rows = [(p, (as_of - pd.DateOffset(months=a)).replace(day=1)) for p, agos in zip(PIDS, ago_per_person) for a in agos]
    return pd.DataFrame(rows, columns=["pid", column]).astype({column: "datetime64[us]"})


@given(months_ago)
def test_checkup_lapsed_means_a_checkup_13_to_36_months_ago_and_none_in_the_last_12(agos):
    got = change.checkup_lapsed(_events(agos, "exam_date"), pd.Index(PIDS), month_end(AS_OF))
    want = [float(any(13 <= a <= 36 for a in x) and not any(a < 12 for a in x)) for x in agos]
    assert got.tolist() == want


def test_every_change_feature_reads_naturally_in_both_languages_for_both_values():
    for name, feature in CATALOG.items():
        if feature.group == "snapshot":
            continue
        for value in (0.0, 1.0, 3.0):
            ja, en = describe(name, value)
            assert ja and en and "nan" not in ja and "{" not in ja + en
        assert describe(name, 1.0) != describe(name, 0.0)
        assert feature.ask_ja and feature.label_ja

def _checkup_lake(tmp_path, checkups_by_month):
    root = tmp_path / "lake"
    for month, dates in checkups_by_month.items():
        residents = pd.DataFrame({"pid": PIDS[:2], "hid": ["c" * 32, "d" * 32], "sex": ["female", "male"],
                                  "district": ["本町", "本町"], "relationship": ["世帯主", "世帯主"],
                                  "age": pd.array([81, 77], dtype="Int64"), "household_size": pd.array([1, 2], dtype="Int64"),
                                  "months_at_address": pd.array([100, 5], dtype="Int64"), "known_on": month_end(month)})
        write_parquet(residents, lake.source_file(root, "residents", month))
        checkups = pd.DataFrame({"pid": [p for p, _ in dates], "exam_date": pd.to_datetime([d for _, d in dates]).as_unit("us"),
                                 "program": "特定健診", "known_on": month_end(month)})
        write_parquet(checkups, lake.source_file(root, "checkups", month))
        write_json({"month": month, "key_id": "k", "sources": {}}, lake.record_file(root, month))
    return root


def test_a_checkup_delivered_after_the_as_of_month_does_not_mend_the_habit_before_it(tmp_path):
    """Both people had a checkup 14 months before May; P0 goes again in June. May's features say
    both habits broke; June's say only P1's (the June delivery is never opened for May)."""
    root = _checkup_lake(tmp_path, {"2025-03": [(PIDS[0], "2025-03-10"), (PIDS[1], "2025-03-12")],
                                    "2026-05": [], "2026-06": [(PIDS[0], "2026-06-03")]})
    may = features_from_lake(root, "2026-05").set_index("pid").loc[PIDS[:2]]
    june = features_from_lake(root, "2026-06").set_index("pid").loc[PIDS[:2]]
    assert may["checkup_lapsed"].tolist() == [1.0, 1.0]
    assert june["checkup_lapsed"].tolist() == [0.0, 1.0]


def test_the_session_ward_shows_the_changes_the_files_hold(ward):
    """On the synthetic ward, checkup habits break (isolation lowers attendance: synth/rates.py CHECKUP_P)."""
    feats = features_from_lake(ward.cfg.lake, ward.month)
    assert feats["checkup_lapsed"].sum() > 0
    assert set(np.unique(feats["checkup_lapsed"])) <= {0.0, 1.0}
