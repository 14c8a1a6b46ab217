"""Synthetic ward generator: monthly extracts of the fictional 東京都みまもり区.

`synth.ward.generate_ward` simulates a ward month by month and writes the ten sources of the data
contract (docs: shared/design/data-contract.md) into an inbox, exactly as the pipeline ingests
them. It is used by the demo, the tests and the benchmarks; no real person is behind any row.

The simulation, in one paragraph: households are drawn from kinds calibrated to a Tokyo special
ward in the 2020s (half of households single-person, mean size ~1.9, ~22% aged 65+). Each month
people age, die by a Japanese life-table hazard, move out (mostly aged 20-39) and are replaced by
move-ins and births. A latent monthly Markov state `isolated` (never written to the inbox) rises
with age, living alone, male sex, no care certification, short residence and bereavement, and
drives noisy signals: fewer checkups, premium arrears, garbage-collection non-response, fewer
welfare contacts, worse outreach outcomes and adverse events. The ward visits by today's rule
(75+ living alone, oldest first) so the labels carry its selection bias.

Clean mode writes canonical UTF-8 CSV. Messy mode writes the same data the way vendor systems
do (CP932 or UTF-8 with BOM, Japanese header aliases, 和暦, full-width digits, Japanese codes);
every format choice comes from its own RNG so the data stream is identical in both modes.

Vectorised throughout: the state is a set of numpy arrays, one row per person (or household),
and a month is a few dozen array operations, so time and memory grow linearly with the ward.

Modules, leaves first (each imports only those above it, numpy and pandas):
  names       name, place and vocabulary lists
  rates       every rate and structural number with its source, and the hazards built from them
  calendar    month indices, dates and ages
  draws       random days, weekdays, choices and digit strings
  households  household composition and new heads of household
  addresses   districts, towns, address lots and buildings
  population  the people and households and how they are created
  dynamics    the latent isolation state, deaths, move-outs, births and move-ins
  services    open cases, institution stays, care certifications, 訪問収集 enrolment
  signals     the month's source tables drawn from the latent state
  writer      the inbox's CSV files (clean or messy) and the truth file
  ward        generate_ward, and the monthly step that ties the rest together
"""
