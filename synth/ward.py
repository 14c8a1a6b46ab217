"""`generate_ward`: simulate the ward month by month and write its inbox (the package's entry).

A month is a few dozen array operations over the whole ward, in six phases (Ward.step): the
latent state, who leaves, how households respond, the month's routine events, how services
respond, and the snapshots at the month's end. Every draw comes from one RNG in a fixed order,
so a seed always gives the same ward; the messy writer draws from its own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import names
from .calendar import age_on, month_ends, month_index, month_label, month_start
from .dynamics import adverse_events, advance_isolation, deaths, draw_latent_state, isolation_covariates, \
    movers, replace_leavers
from .population import DISTRICT_NAMES, Population
from .rates import BURN_IN_MONTHS
from .services import after_emergencies, certifications, institution_stays, open_cases
from .signals import Arrears, certification_snapshot, checkups, event_table, exclusion_snapshot, \
    garbage_pickups, outreach_outcomes, residents_snapshot, welfare_contacts
from .writer import SOURCES, InboxWriter, write_truth


def generate_ward(inbox: Path, residents: int, months: int, end_month: str, seed: int,
                  messy: bool = False, truth: Path | None = None) -> dict:
    """Write <inbox>/<YYYY-MM>/<source>.csv for every month from end_month-(months-1) to end_month.
    Returns a summary dict: {"months": [...], "residents_last_month": int, "files": int,
    "isolated_last_month": int, "districts": {name: residents}}."""
    if residents < 1 or months < 1:
        raise ValueError("residents and months must be positive")
    inbox, last = Path(inbox), month_index(end_month)
    first = last - months + 1
    if truth is not None and Path(truth).resolve().is_relative_to(inbox.resolve()):
        raise ValueError("the truth file holds the latent state and must not be written into the inbox")
    ward = Ward(np.random.default_rng(seed), residents, first - BURN_IN_MONTHS)
    writer = InboxWriter(inbox, messy, np.random.default_rng([seed, 1]))
    labels, files = [], 0
    for mi in range(first - BURN_IN_MONTHS, last + 1):
        tables = ward.step(mi)
        if mi < first:
            continue
        labels.append(month_label(mi))
        for source in SOURCES:
            writer.write(labels[-1], source, tables[source])
            files += 1
    final = ward.latent_truth(last)
    if truth is not None:
        write_truth(truth, final)
    district_names = [d[0] for d in names.DISTRICTS]
    counts = final["district"].value_counts()
    return {"months": labels, "residents_last_month": int(len(final)), "files": files,
            "isolated_last_month": int(final["isolated"].sum()),
            "districts": {d: int(counts.get(d, 0)) for d in district_names}}


class Ward:
    """The simulated ward: its population and the premiums it is still owed."""

    def __init__(self, rng: np.random.Generator, residents: int, start_mi: int) -> None:
        self.pop = Population(rng)
        self.arrears = Arrears()
        ref = month_start(start_mi) - np.timedelta64(1, "D")
        self.pop.populate(residents, ref)
        draw_latent_state(self.pop, np.arange(len(self.pop.people)), ref, initial=True)

    def step(self, mi: int) -> dict[str, dict[str, np.ndarray]]:
        """Advance the ward through month mi and return that month's ten source tables."""
        pop = self.pop
        rng, P = pop.rng, pop.people
        ms, me = month_start(mi), month_ends(mi)[()]
        asof = ms - np.timedelta64(1, "D")            # the previous delivery's knowledge date
        alive0 = np.flatnonzero(P["present"])
        cov = isolation_covariates(pop, alive0, asof, mi)
        age0, alone0 = cov["age"], cov["alone"]

        # 1. latent state for this month
        iso0 = advance_isolation(pop, alive0, cov)

        # 2. adverse events, deaths and move-outs during the month
        adverse = adverse_events(rng, alive0, age0, alone0, iso0, ms, me)
        died = deaths(pop, alive0, age0, adverse)
        leaving = died | movers(pop, alive0, age0, died)

        # 3. households: bereavement, new heads, births and move-ins
        replace_leavers(pop, mi, ms, me, died, leaving)
        stay = np.flatnonzero(P["present"])

        # 4. routine events of everyone present at the month's end
        age_me = age_on(P["by"][stay], P["bmd"][stay], me)
        in_institution = (P["inst_from"][stay] <= me) & (P["inst_end"][stay] >= ms)
        tables = {
            "checkups": checkups(pop, stay, age_me, in_institution, mi, ms),
            "care_premiums": self.arrears.care_premiums(pop, stay, age_me, mi, ms, me),
            "nhi_premiums": self.arrears.nhi_premiums(pop, stay, age_me, mi, ms, me),
            "garbage_pickups": garbage_pickups(pop, stay, in_institution, ms, me),
            "welfare_contacts": welfare_contacts(pop, stay, age_me, ms, me),
        }
        visits = outreach_outcomes(pop, alive0, age0, alone0, leaving, asof, ms, me)
        tables["outreach_outcomes"] = visits
        tables["adverse_events"] = event_table(pop, adverse["person"], adverse["date"],
                                               ("event_date", "event_type"), adverse["type"])

        # 5. services respond: open cases, institution stays, certifications, enrolments
        open_cases(pop, visits["_person"][visits["outcome"] == "needs_support"],
                   visits["visit_date"][visits["outcome"] == "needs_support"])
        after_emergencies(pop, adverse)
        institution_stays(pop, stay, age_me, ms, me)
        certifications(pop, stay, age_me, mi, ms, me)
        if mi % 12 == 2:  # March ends the fiscal year: this year's checkup becomes last year's
            P["ck_last"] = P["ck_this"].copy()
            P["ck_this"][:] = False
            P["ck_slot"] = rng.integers(0, 12, len(P)).astype(np.int8)

        # 6. snapshots at the month's end
        tables["residents"] = residents_snapshot(pop, stay)
        tables["care_certifications"] = certification_snapshot(pop, stay, me)
        tables["exclusions"] = exclusion_snapshot(pop, stay, me)
        return tables

    def latent_truth(self, mi: int) -> pd.DataFrame:
        """The latent truth for everyone in the last snapshot (never part of the inbox)."""
        P, H = self.pop.people, self.pop.households
        stay = np.flatnonzero(P["present"])
        size = self.pop.household_sizes()
        return pd.DataFrame({
            "resident_id": P["rid_s"][stay],
            "isolated": P["isolated"][stay].astype(np.int8),
            "age": age_on(P["by"][stay], P["bmd"][stay], month_ends(mi)[()]),
            "living_alone": (size[P["hh"][stay]] == 1).astype(np.int8),
            "district": DISTRICT_NAMES[H["district"][P["hh"][stay]]],
        })
