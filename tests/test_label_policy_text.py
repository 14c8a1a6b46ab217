"""The model card's words on labels follow the version's `[labels]` policy (reports/label_policy.py)."""
import itertools

import pytest

from models.labels import SOURCES
from reports.label_policy import SOURCE_TEXT, bias_text, task_text

POLICIES = [list(c) for n in range(1, len(SOURCES) + 1) for c in itertools.combinations(SOURCES, n)]


@pytest.mark.parametrize("sources", POLICIES, ids=lambda s: "+".join(s))
def test_the_card_names_exactly_the_sources_its_version_learnt_from(sources):
    section = {"timespan_days": 90, "sources": sources, "positive_outcomes": ["needs_support"],
               "negative_outcomes": ["no_concern"], "not_home_repeated": 3, "max_negatives_per_month": 1234}
    bias, task = bias_text(section), task_text(section)
    assert f"sources = {', '.join(sources)}" in bias and "within 90 days" in task
    for source in SOURCES:
        first_words = SOURCE_TEXT[source].split(":")[0]
        assert (f"{first_words}:" in bias) == (source in sources), source
    assert ("1,234 a month" in bias) == ("adverse_events" in sources)
    assert ("3 or more unanswered" in bias) == ("not_home" in sources)
    # the selection caveat of visit-only labels is said exactly when nothing labels the unvisited
    assert ("exploration picks and fairness checks are the remedy" in bias) == ("adverse_events" not in sources)
