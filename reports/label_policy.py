"""What a model card says of the labels its version learnt from: the `[labels]` policy in words.

One sentence per label source (models/labels.py SOURCES), so the card never describes a policy
the version was not trained under; the reason for the default is the measurement in
docs/model-quality.md.
"""
from __future__ import annotations

from models.labels import LabelPolicy

SOURCE_TEXT = {
    "visits": "visits: a visit in the window that found the person needs support (要支援) is a positive, "
              "one that found no concern (問題なし) a negative; 不在・拒否 leave the person unlabelled",
    "adverse_events": "adverse events: an isolated death or emergency in the window is a positive for anyone, "
                      "visited or not, and everyone else in the cohort aged min_age+ is a negative (sampled "
                      "above {cap:,} a month and weighted back)",
    "not_home": "repeated absence: {repeated} or more unanswered visits (不在) in the window are a positive",
}


def task_text(label_settings: dict) -> str:
    """The card's "Model task": what a positive is, under this policy."""
    policy = LabelPolicy.of(label_settings)
    what = {"visits": "a visit finds the person needs support", "adverse_events": "an isolated death or an "
            "emergency befalls the person", "not_home": "visits repeatedly find nobody at home"}
    return (f"Binary: within {policy.timespan_days} days of the as-of date, "
            + " or ".join(what[s] for s in policy.sources) + ".")


def bias_text(label_settings: dict) -> str:
    """The card's "Labels and their bias": the sources used, and what each does to the labels."""
    policy = LabelPolicy.of(label_settings)
    used = "; ".join(SOURCE_TEXT[s].format(cap=policy.max_negatives_per_month, repeated=policy.not_home_repeated)
                     for s in policy.sources)
    text = f"Label policy ([labels] sources = {', '.join(policy.sources)}): {used}. "
    if policy.population:
        text += ("Visits follow today's rule (75+ living alone, oldest first), so visit labels alone describe only "
                 "the people that rule sends visitors to; adverse events happen whether or not anyone was sent, so "
                 "they label the whole cohort. The linear candidate fits a separate term for labels a visit found "
                 "(a visit finds most isolated people it reaches, an adverse event befalls few), which is dropped "
                 "when scoring. The holdout is judged on adverse events alone, which do not depend on who was "
                 "visited. Adverse events are rare and partly chance: the model learns the risk of an event as well "
                 "as isolation. Measured effect of each source: docs/model-quality.md.")
    else:
        text += ("Outcomes exist only for people who were visited, and visits followed today's rule (75+ living "
                 "alone), so labels describe people like those visited, and the model learns the visiting policy "
                 "as well as isolation; exploration picks and fairness checks are the remedy.")
    return text
