"""Point-in-time features: nothing known after the as-of date may change them."""
import pandas as pd
import pytest

from contract.partitions import PidRange
from pipelines.catalog.features import WORKING_BYTES_PER_RESIDENT, features_from_lake, month_features, range_count
from pipelines.catalog import lake
from contract.months import month_end
from contract.storage import read_json, write_json, write_parquet

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
    feats = features_from_lake(root, "2024-03").set_index("pid")
    assert feats.loc[P1, "months_since_checkup"] == 2 and feats.loc[P1, "months_since_checkup_imp"] == 0
    # P2's checkup was not known on the as-of date: no checkup on record, history length, flagged
    assert feats.loc[P2, "months_since_checkup_imp"] == 1
    assert feats.loc[P2, "months_since_checkup"] == 3


def test_a_later_delivery_is_not_opened_for_an_earlier_as_of_month(tmp_path):
    root = _lake(tmp_path, {"2024-01": _checkup(P1, "2024-01-10", "2024-01-31"),
                            "2024-02": _checkup(P2, "2024-02-03", "2024-02-29")})
    jan = features_from_lake(root, "2024-01").set_index("pid")
    feb = features_from_lake(root, "2024-02").set_index("pid")
    assert jan.loc[P2, "months_since_checkup_imp"] == 1
    assert feb.loc[P2, "months_since_checkup_imp"] == 0 and feb.loc[P2, "months_since_checkup"] == 0


def test_living_alone_and_age_come_from_the_as_of_snapshot(tmp_path):
    root = _lake(tmp_path, {"2024-01": _checkup(P1, "2024-01-10", "2024-01-31")})
    feats = features_from_lake(root, "2024-01").set_index("pid")
    assert feats.loc[P1, "living_alone"] == 1 and feats.loc[P2, "living_alone"] == 0
    assert feats.loc[P1, "age"] == 81


def _unpruned(monkeypatch):
    """lake.read_events as before the feature reads were pruned: every column, every row."""
    full = lake.read_events
    monkeypatch.setattr(lake, "read_events", lambda root, source, month, columns=None, where=None:
                        full(root, source, month))


def test_reading_only_the_windows_gives_the_same_features_as_reading_everything(ward, monkeypatch):
    """features/build.py reads only the columns and date windows it needs; the values must be
    those computed from the whole history (newest delivery per key winning)."""
    months = lake.ingested_months(ward.cfg.lake)
    chosen = [months[0], months[len(months) // 2], months[-1]]
    pruned = {m: features_from_lake(ward.cfg.lake, m) for m in chosen}
    _unpruned(monkeypatch)
    for m in chosen:
        pd.testing.assert_frame_equal(pruned[m], features_from_lake(ward.cfg.lake, m))


@pytest.mark.parametrize("count", [2, 7])
def test_features_built_partition_by_partition_equal_the_whole_wards(ward, count):
    """A memory budget splits the people into pseudonym ranges; concatenated in order, the
    partitions' tables are the whole ward's table, row for row (households and their NHI bills
    cross no partition boundary that matters: bills are selected by the partition's hids)."""
    month = ward.month
    whole = features_from_lake(ward.cfg.lake, month)
    parts = [features_from_lake(ward.cfg.lake, month, PidRange(i, count)) for i in range(count)]
    assert all(len(part) for part in parts)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_the_memory_budget_sets_the_partition_count_and_the_table_does_not_change(ward, tmp_path):
    import shutil

    work = tmp_path / "work"
    shutil.copytree(ward.cfg.lake, work / "lake")
    residents = len(lake.read_snapshot(work / "lake", "residents", ward.month, columns=["pid"]))
    tight = residents * WORKING_BYTES_PER_RESIDENT / 2**20 / 3   # a third of what one partition needs
    assert range_count(work / "lake", ward.month, None) == 1
    assert range_count(work / "lake", ward.month, tight) == 3
    built = month_features(work, ward.month, tight)
    assert read_json(work / "features" / f"{ward.month}.json")["partitions"] == 3
    pd.testing.assert_frame_equal(built, features_from_lake(ward.cfg.lake, ward.month))


def test_a_redelivered_bill_replaces_the_earlier_one_inside_the_window(tmp_path, monkeypatch):
    root = _lake(tmp_path, {"2024-01": _checkup(P1, "2024-01-10", "2024-01-31"),
                            "2024-02": _checkup(P1, "2024-02-10", "2024-02-29")})

    def bills(rows, known_on):
        return pd.DataFrame({"pid": [r[0] for r in rows], "billing_month": [r[1] for r in rows],
                             "amount_due": pd.array([r[2] for r in rows], dtype="Int64"),
                             "amount_paid": pd.array([r[3] for r in rows], dtype="Int64"),
                             "paid_date": pd.Series([pd.NaT] * len(rows), dtype="datetime64[us]"),
                             "collection": ["ordinary"] * len(rows),
                             "known_on": pd.to_datetime([known_on] * len(rows)).as_unit("us")})
    # January: P1 unpaid for 2024-01 and for a month outside the 12-month window; P2 unpaid.
    write_parquet(bills([(P1, "2024-01", 5000, 0), (P1, "2022-12", 5000, 0), (P2, "2024-01", 5000, 0)],
                        "2024-01-31"), lake.source_file(root, "care_premiums", "2024-01"))
    # February re-delivers P1's January bill as paid.
    write_parquet(bills([(P1, "2024-01", 5000, 5000)], "2024-02-29"), lake.source_file(root, "care_premiums", "2024-02"))
    feats = features_from_lake(root, "2024-02").set_index("pid")
    assert feats.loc[P1, "care_arrears_months"] == 0 and feats.loc[P2, "care_arrears_months"] == 1
    _unpruned(monkeypatch)
    pd.testing.assert_frame_equal(feats.reset_index(), features_from_lake(root, "2024-02"))
