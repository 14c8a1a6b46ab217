"""Point-in-time features: nothing known after the as-of date may change them."""
import pandas as pd

from features.build import build_features
from pipelines import lake
from pipelines.months import month_end
from pipelines.storage import write_json, write_parquet

P1, P2 = "a" * 32, "b" * 32
H1, H2 = "c" * 32, "d" * 32


def _lake(tmp_path, checkups_by_month):
    root = tmp_path / "lake"
    for month, checkups in checkups_by_month.items():
        residents = pd.DataFrame({"pid": [P1, P2], "hid": [H1, H2], "sex": ["female", "male"],
                                  "district": ["本町", "本町"], "relationship": ["世帯主", "世帯主"],
                                  "age": pd.array([81, 77], dtype="Int64"),
                                  "household_size": pd.array([1, 2], dtype="Int64"),
                                  "months_at_address": pd.array([100, 5], dtype="Int64"),
                                  "known_on": month_end(month)})
        write_parquet(residents, lake.source_file(root, "residents", month))
        write_parquet(checkups, lake.source_file(root, "checkups", month))
        write_json({"month": month, "key_id": "k", "sources": {}}, lake.record_file(root, month))
    return root


def _checkup(pid, date, known_on):
    return pd.DataFrame({"pid": [pid], "exam_date": pd.to_datetime([date]).as_unit("us"),
                         "program": ["特定健診"], "known_on": pd.to_datetime([known_on]).as_unit("us")})


def test_a_row_known_one_day_after_the_as_of_date_is_ignored(tmp_path):
    as_of = month_end("2024-03")
    honest = _checkup(P1, "2024-01-10", "2024-01-31")
    late = _checkup(P2, "2024-03-15", as_of + pd.Timedelta(days=1))   # carries a later knowledge date
    root = _lake(tmp_path, {"2024-01": honest, "2024-02": honest.iloc[:0], "2024-03": late})
    feats = build_features(root, "2024-03").set_index("pid")
    assert feats.loc[P1, "months_since_checkup"] == 2 and feats.loc[P1, "months_since_checkup_imp"] == 0
    # P2's checkup was not known on the as-of date: no checkup on record, history length, flagged
    assert feats.loc[P2, "months_since_checkup_imp"] == 1
    assert feats.loc[P2, "months_since_checkup"] == 3


def test_a_later_delivery_is_not_opened_for_an_earlier_as_of_month(tmp_path):
    root = _lake(tmp_path, {"2024-01": _checkup(P1, "2024-01-10", "2024-01-31"),
                            "2024-02": _checkup(P2, "2024-02-03", "2024-02-29")})
    jan = build_features(root, "2024-01").set_index("pid")
    feb = build_features(root, "2024-02").set_index("pid")
    assert jan.loc[P2, "months_since_checkup_imp"] == 1
    assert feb.loc[P2, "months_since_checkup_imp"] == 0 and feb.loc[P2, "months_since_checkup"] == 0


def test_living_alone_and_age_come_from_the_as_of_snapshot(tmp_path):
    root = _lake(tmp_path, {"2024-01": _checkup(P1, "2024-01-10", "2024-01-31")})
    feats = build_features(root, "2024-01").set_index("pid")
    assert feats.loc[P1, "living_alone"] == 1 and feats.loc[P2, "living_alone"] == 0
    assert feats.loc[P1, "age"] == 81
