"""Disclosure control for the whole report: one pass over every count it publishes.

Every count of people the report (and the model card built from it) shows is a *cell* with a
canonical identity `(population, attribute, group)`: the 75〜84歳 people on this month's list are
one cell whether §5 (fairness) or §8 (make-up) shows them, so it is hidden everywhere or shown
the same everywhere. Beside the cells, the pass knows the linear relations that hold between
them and that a reader could use to work a hidden cell out: the groups of an attribute sum to
the population's total (`partition`), one population lies inside another (`subset`: listed ⊆
eligible ⊆ residents), and a rate is its numerator over its denominator (`rate`).

The pass (`disclose`):
1. Primary suppression: a cell of 1 … threshold-1 people is hidden ("<threshold").
2. A rate is shown as a rate, with its numerator and denominator and a 95% Wilson interval,
   whenever its denominator is shown and not small: the denominator is the group the rate is
   about, and a group of `threshold` or more people is not a small cell. Its numerator is then
   published (numerator = rate × denominator), so it is not suppressed as a count either. When
   the denominator is hidden the rate is hidden too, and the numerator is an ordinary cell again.
3. Complementary suppression, repeated until nothing changes: a relation with exactly one hidden
   cell would give it back by subtraction, so its smallest non-zero shown cell is hidden as well
   ("x"; ties broken by the cell's identity, so the pass is deterministic).
Zero is shown: it discloses nobody. Some cells are public by policy (the visiting capacity of a
district is set before anyone is scored, so a district list filled to capacity shows its count);
they are never hidden, and a cell that public cells alone determine is public too.

tests/test_disclosure.py attacks the result: from the published cells and relations alone it
bounds every hidden cell with a linear programme and must fail to pin any of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.metrics import wilson

COMPLEMENTARY = "x"
WHOLE = ("cohort", "all")      # the (attribute, group) of a population's total

Key = tuple[str, str, str]      # (population, attribute, group)


def total(population: str) -> Key:
    """The key of a population's total."""
    return (population, *WHOLE)


@dataclass
class Cells:
    """Every count the report publishes, by identity, and the relations between them."""
    values: dict[Key, int | None] = field(default_factory=dict)    # None: withheld, never published
    public: set[Key] = field(default_factory=set)
    printed: set[Key] = field(default_factory=set)     # shown as a count somewhere (others only through rates)
    sums: list[tuple[Key, tuple[Key, ...]]] = field(default_factory=list)
    subsets: list[tuple[Key, Key]] = field(default_factory=list)
    rates: list[tuple[Key, Key]] = field(default_factory=list)

    def count(self, key: Key, value: int | None, public: bool = False, printed: bool = True) -> Key:
        """Register one cell; the same cell registered twice must hold the same count. A cell
        that is not `printed` appears only inside rates (as their numerator or denominator)."""
        value = None if value is None else int(value)
        if printed:
            self.printed.add(key)
        if key in self.values and value is None:
            return key          # a table that withholds a cell another table knows: the count stands
        if key in self.values and self.values[key] not in (None, value):
            raise ValueError(f"cell {key} is published as both {self.values[key]} and {value}")
        self.values[key] = value
        if public:
            self.public.add(key)
        return key

    def partition(self, population: str, attribute: str, counts: dict[str, int | None], whole: int | None,
                  printed: bool = True) -> None:
        """An attribute's groups of a population, which sum to its total."""
        parts = tuple(self.count((population, attribute, str(g)), n, printed=printed) for g, n in counts.items())
        self.relation(self.count(total(population), whole, printed=printed), parts)

    def relation(self, whole: Key, parts: tuple[Key, ...]) -> None:
        """whole = Σ parts."""
        if (whole, parts) not in self.sums:
            self.sums.append((whole, parts))

    def subset(self, inner: Key, outer: Key) -> None:
        """inner ≤ outer (a population inside another)."""
        if inner in self.values and outer in self.values and (inner, outer) not in self.subsets:
            self.subsets.append((inner, outer))

    def rate(self, numerator: Key, denominator: Key) -> None:
        if (numerator, denominator) not in self.rates:
            self.rates.append((numerator, denominator))
            self.subset(numerator, denominator)


@dataclass(frozen=True)
class Disclosed:
    """The pass's verdict: which cells are hidden and how every published count and rate reads."""
    cells: Cells
    threshold: int
    hidden: dict[Key, str]          # key -> "primary" (small) | "complementary" (hidden so no small one can be worked out)
    values: dict[Key, int | None]   # every cell's count (withheld ones solved where the relations allow)
    known: frozenset = frozenset()  # the cells a reader can read: printed and not hidden, or behind a shown rate

    def text(self, key: Key) -> str:
        """A count as shown: the number, "<threshold" (small) or "x" (hidden so no small cell
        can be worked out). Asking for a cell the pass never saw is an error: every count shown
        goes through the pass."""
        value = self.values[key]
        kind = self.hidden.get(key)
        if kind == "primary":
            return f"<{self.threshold}"
        if kind is not None:
            return COMPLEMENTARY
        return str(value)

    def shown(self, key: Key) -> bool:
        return key not in self.hidden

    def rate_text(self, numerator: Key, denominator: Key, interval: bool = True) -> str:
        """A rate as shown: `23.3% [14.4–35.4] (14/60)` with its 95% Wilson interval; "—" over
        nobody; `n<10` when the denominator is small; "x" when either count is hidden."""
        if (numerator, denominator) not in self.cells.rates:
            raise KeyError(f"rate {numerator}/{denominator} was not registered with the pass")
        den = self.values[denominator]
        if den is None or den == 0:
            return "—"
        if den < self.threshold:
            return f"n<{self.threshold}"
        if not (self.shown(numerator) and self.shown(denominator)):
            return COMPLEMENTARY
        num = self.values[numerator]
        return rate_words(num, den) if interval else f"{100 * num / den:.1f}%"

    def published(self) -> dict[Key, int]:
        """What a reader can read: every printed count not hidden, and both counts of a shown rate."""
        return {k: self.values[k] for k in self.known}


def rate_words(numerator: int, denominator: int) -> str:
    """num/den as a percentage with its 95% Wilson interval (one way, for every rate shown)."""
    low, high = wilson(numerator, denominator)
    return f"{100 * numerator / denominator:.1f}% [{100 * low:.1f}–{100 * high:.1f}] ({numerator}/{denominator})"


def _solved(cells: Cells) -> dict[Key, int | None]:
    """The cells' counts, with every withheld cell that the relations determine filled in: a table
    may withhold a group's count (too few outcomes to judge), but a reader can still subtract, so
    the pass treats it like any other cell of that count (hidden if small, shown if zero)."""
    values = dict(cells.values)
    changed = True
    while changed:
        changed = False
        for whole, parts in cells.sums:
            members = (whole, *parts)
            unknown = [c for c in members if values[c] is None]
            if len(unknown) == 1:
                known = sum(values[p] for p in parts if values[p] is not None)
                values[unknown[0]] = known if unknown[0] == whole else values[whole] - known
                changed = True
    return values


def disclose(cells: Cells, threshold: int) -> Disclosed:
    """Primary and complementary suppression over every cell at once (see the module's text),
    then the attacker's audit: while a linear programme over everything published still pins a
    protected cell (`pinned`), one more cell next to it is hidden and the pass runs again."""
    locked: dict[Key, str] = {}         # hidden by the audit: never shown again
    # cells that public counts alone determine (a list whose public capacity is under the
    # threshold, say): no suppression can protect them, so the pass stays hidden there and stops
    conceded: set[Key] = set()
    while True:
        shown = _fixed_point(cells, threshold, locked)
        exposed = [k for k in pinned(shown) if k not in conceded]
        if not exposed:
            return shown
        extra = _next_to(cells, shown, exposed[0])
        if extra is None:
            conceded.add(exposed[0])
            continue
        locked[extra] = "complementary"


def _fixed_point(cells: Cells, threshold: int, locked: dict[Key, str]) -> Disclosed:
    values, public = _solved(cells), set(cells.public)
    hidden: dict[Key, str] = dict(locked)
    relations = [(w, *ps) for w, ps in cells.sums]

    def small(key: Key) -> bool:
        return values[key] is not None and 0 < values[key] < threshold

    while True:
        # a rate is shown when its denominator is not small and neither count is hidden; both
        # counts can then be read off it
        carried = {k for n, d in cells.rates for k in (n, d)
                   if (values[d] or 0) >= threshold and values[n] is not None and n not in hidden and d not in hidden}
        primary = [k for k in sorted(values) if k in cells.printed and small(k) and k not in hidden
                   and k not in public | carried]
        if primary:
            hidden.update(dict.fromkeys(primary, "primary"))
            continue
        known = {k for k in values if values[k] is not None and k not in hidden
                 and (k in cells.printed or k in carried or k in public)}
        numerators = {n for n, _ in cells.rates if n in carried}
        step = _complement(relations, values, known, hidden, public, numerators, small, set(locked))
        if step is None:
            return Disclosed(cells, threshold, hidden, values, frozenset(known))
        key, kind = step
        if kind == "public":
            public.add(key)
            del hidden[key]
        else:
            hidden[key] = kind


def _complement(relations, values, known, hidden, public, numerators, small, locked) -> tuple[Key, str] | None:
    """The next cell to hide (or make public): the smallest non-zero known cell of the first
    relation in which exactly one unknown cell is hidden or small, so subtraction would give it.

    A shown rate's numerator is published with the rate. When the cell to protect is a relation's
    whole and its parts are such numerators, public cells or zeros, the whole is only the union of
    people already shown, so it is shown too (the rates stand). When it is a part, its people are
    in no published cell: a numerator is hidden if need be (its rate then reads "x")."""
    for members in relations:
        unknown = [c for c in members if c not in known]
        if len(unknown) != 1 or not (unknown[0] in hidden or small(unknown[0])):
            continue
        spared = public | numerators if unknown[0] == members[0] else public
        free = sorted((values[c], c) for c in members if c in known and c not in spared and values[c])
        if free:
            return free[0][1], "complementary"
        if hidden.get(unknown[0]) == "primary" and unknown[0] not in locked:
            # every other cell is public, a rate's published count or zero: they determine this one
            return unknown[0], "public"
    return None


def _relations(cells: Cells) -> list[tuple[tuple[int, Key], ...]]:
    """Every relation as signed terms Σ sign·cell (= 0 for a sum, ≤ 0 for a subset)."""
    return [((1, w), *((-1, p) for p in ps)) for w, ps in cells.sums]


def _programme(shown: Disclosed):
    """The reader's linear programme: (unknown keys, their index, equality rows, ≤ rows, bounds,
    protected keys). Rows are (coefficients over the unknowns, constant)."""
    values, published, threshold = shown.values, shown.published(), shown.threshold
    unknown = [k for k in values if k not in published]
    index = {k: i for i, k in enumerate(unknown)}

    def row(terms):        # the unknown part as a row, the published part moved to the constant
        r, const = np.zeros(len(unknown)), 0.0
        for sign, k in terms:
            if k in index:
                r[index[k]] += sign
            else:
                const -= sign * published[k]
        return r, const

    eq = [row(terms) for terms in _relations(shown.cells)]
    ub = [row([(1, inner), (-1, outer)]) for inner, outer in shown.cells.subsets]
    eq, ub = [e for e in eq if e[0].any()], [u for u in ub if u[0].any()]
    bounds = [(1, threshold - 1) if shown.hidden.get(k) == "primary" else (1, None) if k in shown.hidden
              else (0, None) for k in unknown]
    protected = [k for k in unknown
                 if k in shown.hidden or (values[k] is not None and 0 < values[k] < threshold)]
    return unknown, index, eq, ub, bounds, protected


def feasible_ranges(shown: Disclosed, only: set[Key] | None = None) -> dict[Key, tuple[float, float]]:
    """What a reader can work out: for every protected cell (hidden, or small and only inside
    relations; or those of `only`), its [min, max] over non-negative reals given every published
    count, every sum and every subset inequality. A cell shown as <threshold lies in
    [1, threshold-1]; a hidden cell is not zero (zeros are shown). The exact audit, used by the
    pass for what its quick certificate (`pinned`) leaves open, and by the tests."""
    # the linear programme is the audit's only use of scipy: imported here so the rest of the
    # reports layer does not load it
    from scipy.optimize import linprog

    unknown, index, eq, ub, bounds, protected = _programme(shown)
    if only is not None:
        protected = [k for k in protected if k in only]
    out = {}
    # Each cell is solved over its connected part only (the unknowns that share a relation with
    # it, transitively): the same answer as the whole programme, at a fraction of its size, as
    # most tables share no unknown with another.
    for part in _components(len(unknown), [r for r, _ in eq + ub]):
        mine = [k for k in protected if index[k] in part]
        if not mine:
            continue
        cols = sorted(part)
        a_eq, b_eq = _restricted(eq, cols)
        a_ub, b_ub = _restricted(ub, cols)
        rows = (0 if a_eq is None else len(a_eq)) + (0 if a_ub is None else len(a_ub))
        if rows <= 1:   # one relation (most tables): its exact range in closed form, no solver
            single = (a_eq[0], b_eq[0], True) if a_eq is not None else (a_ub[0], b_ub[0], False) if rows else None
            where = {i: j for j, i in enumerate(cols)}
            for k in mine:
                out[k] = _one_relation_range(single, [bounds[i] for i in cols], where[index[k]])
            continue
        problem = {"A_ub": a_ub, "b_ub": b_ub, "A_eq": a_eq, "b_eq": b_eq,
                   "bounds": [bounds[i] for i in cols], "method": "highs"}
        where = {i: j for j, i in enumerate(cols)}
        for k in mine:
            ends = []
            for sense in (1, -1):
                c = np.zeros(len(cols))
                c[where[index[k]]] = sense
                res = linprog(c, **problem)
                if res.status not in (0, 3):
                    raise ValueError(f"the published cells are inconsistent: {res.message}")
                ends.append(sense * res.fun if res.status == 0 else -sense * np.inf)    # unbounded: min −∞, max +∞
            out[k] = (ends[0], ends[1])
    return out


def _one_relation_range(relation, bounds: list[tuple], i: int) -> tuple[float, float]:
    """[min, max] of unknown i under its bounds and at most one relation a·x = b (or a·x ≤ b):
    with one linear relation over a box, the interval sums below are exact."""
    low, high = (float(bounds[i][0]), np.inf if bounds[i][1] is None else float(bounds[i][1]))
    if relation is None:
        return low, high
    a, b, equal = relation
    lo = [float(l) for l, _ in bounds]
    hi = [np.inf if u is None else float(u) for _, u in bounds]
    # the rest's contribution Σ_{j≠i} a_j x_j lies in [rest_low, rest_high]
    rest_low = sum(min(a[j] * lo[j], a[j] * hi[j]) for j in range(len(a)) if j != i and a[j])
    rest_high = sum(max(a[j] * lo[j], a[j] * hi[j]) for j in range(len(a)) if j != i and a[j])
    # a_i x_i = b − rest (equality) or a_i x_i ≤ b − rest_low at best (inequality)
    if equal:
        ends = sorted(((b - rest_high) / a[i], (b - rest_low) / a[i]))
        return max(low, ends[0]), min(high, ends[1])
    bound = (b - rest_low) / a[i]
    return (low, min(high, bound)) if a[i] > 0 else (max(low, bound), high)


def _restricted(rows: list, cols: list[int]) -> tuple:
    """(matrix, constants) of the rows that touch `cols`, on those columns only; (None, None) if none."""
    kept = [(r[cols], c) for r, c in rows if r[cols].any()]
    return (np.array([r for r, _ in kept]), [c for _, c in kept]) if kept else (None, None)


def _components(n: int, rows: list[np.ndarray]) -> list[set[int]]:
    """The connected parts of n unknowns, two being connected when a row holds both."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for r in rows:
        nz = np.flatnonzero(r)
        for j in nz[1:]:
            a, b = root(int(nz[0])), root(int(j))
            if a != b:
                parent[b] = a
    parts: dict[int, set[int]] = {}
    for i in range(n):
        parts.setdefault(root(i), set()).add(i)
    return list(parts.values())


def pinned(shown: Disclosed) -> list[Key]:
    """The protected cells a reader can work out to within one person, in key order.

    Two solutions of the reader's programme that differ by a person in a cell prove the cell is
    not pinned. A few programmes that push all open cells in random directions at once give such
    solutions, so most cells are cleared by a handful of solves instead of two each. Whatever
    stays open gets the exact ranges (`feasible_ranges`)."""
    from scipy.optimize import linprog   # see feasible_ranges

    unknown, index, eq, ub, bounds, protected = _programme(shown)
    open_cells = set(protected)
    if open_cells:
        # a cap on unbounded cells keeps every solve bounded; it only narrows the reader's region,
        # so what it proves still holds
        known = [abs(v) for v in shown.values.values() if v is not None]
        cap = 10.0 * (float(sum(known)) + sum(abs(c) for _, c in eq + ub) + 10.0)
        capped = [(lo, cap if hi is None else hi) for lo, hi in bounds]
        problem = {"A_ub": np.array([r for r, _ in ub]) if ub else None, "b_ub": [c for _, c in ub] or None,
                   "A_eq": np.array([r for r, _ in eq]) if eq else None, "b_eq": [c for _, c in eq] or None,
                   "bounds": capped, "method": "highs"}
        # the lowest and highest value each cell took over the solutions found so far; random
        # directions (seeded: the pass is deterministic), since pushing every cell the same way
        # moves nothing where the cells sum to a published total
        low, high = np.full(len(unknown), np.inf), np.full(len(unknown), -np.inf)
        rng, stalled = np.random.default_rng(0), 0
        for _ in range(16):
            c = np.zeros(len(unknown))
            cols = [index[k] for k in sorted(open_cells)]
            c[cols] = rng.standard_normal(len(cols))
            res = linprog(c, **problem)
            if res.status != 0:
                break                                         # leave the rest to the exact audit
            low, high = np.minimum(low, res.x), np.maximum(high, res.x)
            moved = {k for k in open_cells if high[index[k]] - low[index[k]] >= 1 - 1e-6}
            open_cells -= moved
            stalled = 0 if moved else stalled + 1
            if not open_cells or stalled >= 3:
                break
    if not open_cells:
        return []
    return sorted(k for k, (low, high) in feasible_ranges(shown, only=open_cells).items() if high - low < 1 - 1e-6)


def _next_to(cells: Cells, shown: Disclosed, key: Key) -> Key | None:
    """The cell to hide so `key` is no longer pinned: the smallest non-zero published, non-public
    cell in a relation with it (ties by identity); if there is none, in a relation with one of
    that relation's unknown cells, and so on outward."""
    relations = [tuple(k for _, k in terms) for terms in _relations(cells)] + list(cells.subsets)
    known = shown.published()
    reached, frontier = {key}, [key]
    while frontier:
        near = [m for r in relations if set(r) & set(frontier) for m in r]
        free = sorted((known[m], m) for m in set(near) if m in known and m not in cells.public and known[m])
        if free:
            return free[0][1]
        frontier = sorted({m for m in near if m not in known and m not in reached})
        reached |= set(frontier)
    return None
