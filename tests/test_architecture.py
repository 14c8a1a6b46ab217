"""The shape of the code: imports go one way, no cycles, and stages do no I/O.

    pipelines (CLI, runner, catalogue, ingest, governance)
        → reports → models → features → contract (the leaf)
    expectations → features.catalog, contract
    synth (the synthetic ward) → contract

Stage modules (features, models, expectations, reports) take tables and settings and return
tables or small dataclasses: they never open a file, never import the catalogue, MLflow or the
config loader. Read from the source with `ast`, so the check sees every import, also those
inside functions, which must say why they are not at the top.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "features", "models", "reports", "expectations", "pipelines", "synth")
# package -> the project packages it may import (besides itself)
ALLOWED = {
    "contract": set(),
    "features": {"contract"},
    "models": {"features", "contract"},
    "reports": {"models", "features", "contract"},
    "expectations": {"features", "contract"},
    "synth": {"contract"},
    "pipelines": {"reports", "models", "features", "expectations", "contract", "synth"},
}
# expectations may use only the feature catalogue of the features package
NARROW = {("expectations", "features"): {"features.catalog", "features.groups"}}
STAGES = ("features", "models", "expectations", "reports")
# What a stage must not import: the catalogue and runner (any of pipelines), MLflow, the config
# loader, and the storage primitives (a stage that imports them is doing I/O).
STAGE_FORBIDDEN = ("pipelines", "mlflow", "tomllib", "contract.storage")
# Calls that read or write files (as attributes or names).
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "mkdir", "unlink", "rmtree",
              "to_parquet", "to_csv", "to_excel", "read_parquet", "read_csv", "read_excel", "read_table",
              "write_table", "ParquetFile", "glob", "rglob", "iterdir", "exists", "is_file", "is_dir"}


@dataclass(frozen=True)
class Import:
    module: str      # the importing module, dotted
    target: str      # the imported module, dotted (project modules only)
    line: int
    top: bool        # at module level (not inside a function or class)
    commented: bool  # a comment on its line or the line above


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _resolve(name: str, known: set[str]) -> str | None:
    """The project module a dotted import names (a package's module, or the package itself)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _block_comment(lines: list[str], lineno: int) -> bool:
    """Whether the block of import lines holding `lineno` (1-based) opens with a comment line."""
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith(("from ", "import ")):
        i -= 1
    return i >= 0 and lines[i].strip().startswith("#")


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    # imports under `if TYPE_CHECKING:` / try at module level count as top
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        commented = "#" in lines[node.lineno - 1] or _block_comment(lines, node.lineno)
        seen = set()
        for target in targets:
            project = _resolve(target, known)
            external = target.split(".")[0]
            resolved = project or (target if external in ("mlflow", "tomllib") else None)
            if resolved and resolved not in seen:
                seen.add(resolved)
                found.append(Import(name, resolved, node.lineno, id(node) in top, commented))
    return found


def graph() -> tuple[dict[str, Path], list[Import]]:
    mods = modules()
    known = set(mods)
    edges = [i for name, path in mods.items() for i in imports_of(name, path, known)]
    return mods, edges


def _package(module: str) -> str:
    return module.split(".")[0]


def direction_violations(edges: list[Import]) -> list[str]:
    bad = []
    for e in edges:
        src, dst = _package(e.module), _package(e.target)
        if dst not in PACKAGES or src == dst:
            continue
        narrow = NARROW.get((src, dst))
        if dst not in ALLOWED[src] or (narrow is not None and e.target not in narrow):
            bad.append(f"{e.module}:{e.line} imports {e.target} ({src} → {dst} runs against the arrows)")
    return bad


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    succ: dict[str, set[str]] = {}
    for e in edges:
        if e.target != e.module and _package(e.target) in PACKAGES:
            succ.setdefault(e.module, set()).add(e.target)
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(succ.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return out


def hidden_imports(edges: list[Import]) -> list[str]:
    return [f"{e.module}:{e.line} imports {e.target} inside a function without a comment saying why"
            for e in edges if not e.top and not e.commented]


def stage_violations(mods: dict[str, Path], edges: list[Import]) -> list[str]:
    bad = [f"{e.module}:{e.line} (a stage) imports {e.target}" for e in edges
           if _package(e.module) in STAGES and any(e.target == f or e.target.startswith(f + ".") for f in STAGE_FORBIDDEN)]
    for name, path in mods.items():
        if _package(name) not in STAGES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if called in FILE_CALLS:
                    bad.append(f"{name}:{node.lineno} (a stage) calls {called}(): file I/O belongs to the catalogue")
    return bad


def test_imports_run_one_way():
    _, edges = graph()
    assert direction_violations(edges) == []


def test_there_is_no_import_cycle():
    _, edges = graph()
    assert cycles(edges) == []


def test_imports_inside_functions_say_why():
    _, edges = graph()
    assert hidden_imports(edges) == []


def test_stages_do_no_io_and_never_see_the_catalogue_mlflow_or_the_config_loader():
    mods, edges = graph()
    assert stage_violations(mods, edges) == []


def test_the_checker_catches_what_it_is_meant_to(tmp_path):
    """The rules fire on a counter-example (so a green run means something)."""
    edges = [Import("features.build", "pipelines.catalog.lake", 3, True, False),
             Import("models.train", "reports.plots", 4, False, False),
             Import("reports.a", "reports.b", 1, True, False), Import("reports.b", "reports.a", 1, True, False)]
    assert len(direction_violations(edges)) == 2
    assert cycles(edges) == [["reports.a", "reports.b"]]
    assert len(hidden_imports(edges)) == 1
    stage = tmp_path / "x.py"
    stage.write_text("import json\ndef f(p):\n    return open(p).read()\n", encoding="utf-8")
    assert stage_violations({"models.x": stage}, [Import("models.x", "mlflow", 1, True, False)]) == [
        "models.x:1 (a stage) imports mlflow", "models.x:3 (a stage) calls open(): file I/O belongs to the catalogue"]


def test_no_module_is_over_about_400_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 420}
    assert long == {}


def _imported_packages(path: Path) -> list[tuple[str, int, bool]]:
    """(dotted module imported, line, at module level) of every import in a file, any package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno, id(node) in top))
    return out


def test_only_the_engine_switch_imports_the_spark_engine_and_only_it_imports_pyspark():
    """pyspark is an optional extra: the Spark engine (pipelines/spark/) is imported only by the
    engine switch in pipelines/monthly.py, lazily, and nothing outside it imports pyspark, so the
    local engine and the README's two commands never need Spark or Java."""
    bad = []
    for name, path in modules().items():
        inside = name == "pipelines.spark" or name.startswith("pipelines.spark.")
        for target, line, top in _imported_packages(path):
            if target.split(".")[0] == "pyspark" and not inside:
                bad.append(f"{name}:{line} imports {target} (only pipelines/spark/ may)")
            if (target == "pipelines.spark" or target.startswith("pipelines.spark.")) and not inside:
                if name not in ("pipelines.monthly", "pipelines.cli") or top:
                    bad.append(f"{name}:{line} imports {target} (only the engine switch may, inside a function)")
    assert bad == []
