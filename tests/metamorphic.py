"""A metamorphic check of the engine: a cell answers the same in any matrix as it does alone.

Matrices are generated from pools of sources and targets that share names, addresses and ports
(duplicates under other names, port lists, random order, excludes, concurrency from 1 up), run
whole, and every cell is compared with the same cell run on its own (`select` on its source and
column). A difference means a cell's answer depends on its neighbours: the wrong-answer class of
bug where a closed port was reported ok because a neighbouring dns cell shared its lookup.

The generator is seeded: a failure names the seed and the matrix, and replays exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import yaml

from probe_engine import MatrixResult, RunOptions, Selection, run_matrix
from probe_engine.results import CellResult
from probe_engine.spec import load_matrix_text


@dataclass(frozen=True)
class Atom:
    """A source or target from a pool: its matrix mapping and what it may be paired with."""

    key: str
    spec: Mapping[str, Any]
    # Keys of the atoms this one must never meet in a cell (a shell tool cannot ask a chosen
    # nameserver: it would ask this machine's resolver instead, which tests must never do).
    avoid: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Generated:
    seed: int
    text: str
    sources: dict[str, Atom]  # by name in the matrix
    targets: dict[str, Atom]


def generate(
    seed: int,
    sources: Sequence[Atom],
    targets: Sequence[Atom],
    defaults: Mapping[str, Any],
    max_sources: int = 4,
    max_targets: int = 9,
    extra: Mapping[str, Any] | None = None,
) -> Generated:
    """One matrix: a few sources and targets drawn with repeats, shuffled, some excludes."""
    rng = random.Random(seed)
    chosen_sources = rng.sample(list(sources), rng.randint(1, min(max_sources, len(sources))))
    chosen_targets = [rng.choice(list(targets)) for _ in range(rng.randint(1, max_targets))]
    rng.shuffle(chosen_targets)
    source_names = {f"s{i}-{a.key}": a for i, a in enumerate(chosen_sources)}
    target_names = {f"t{i}-{a.key}": a for i, a in enumerate(chosen_targets)}
    exclude = [
        {"source": s, "target": t}
        for s, sa in source_names.items()
        for t, ta in target_names.items()
        if ta.key in sa.avoid or sa.key in ta.avoid
    ]
    pairs = [(s, t) for s in source_names for t in target_names]
    for source, target in rng.sample(pairs, min(len(pairs), rng.randint(0, 2))):
        exclude.append({"source": source, "target": target})
    matrix: dict[str, Any] = {
        "version": 1,
        **(extra or {}),
        "defaults": {**defaults, "concurrency": rng.choice([1, 2, 3, 8, 256])},
        "sources": {name: dict(a.spec) for name, a in source_names.items()},
        "targets": {name: dict(a.spec) for name, a in target_names.items()},
    }
    if exclude:
        matrix["exclude"] = exclude
    text = yaml.safe_dump(matrix, sort_keys=False)
    return Generated(seed, text, source_names, target_names)


def signature(cell: CellResult) -> tuple[Any, ...]:
    """What must not depend on the neighbours: the status and each check's facts, in order
    (not durations, messages or local ports, which vary from run to run). A port-forward
    column listens on a port of its own in each run: its port is not compared."""
    tunnel = cell.target.endswith("/port-forward")
    checks = tuple(
        (
            c.name,
            c.status,
            c.errno_name,
            c.role,
            c.address,
            None if tunnel else c.port,
            c.http_status,
            c.host,
            tuple(c.addresses or ()),
        )
        for c in cell.checks
    )
    return (cell.status, checks)


def run(text: str, environ: Mapping[str, str], select: Selection | None = None) -> MatrixResult:
    loaded = load_matrix_text(text, "metamorphic.yaml", dict(environ))
    options = RunOptions(select=select or Selection())
    result: MatrixResult = anyio.run(run_matrix, loaded, options)
    return result


class AloneOracle:
    """Each distinct cell run on its own, once: (source atom, target atom, column suffix)."""

    def __init__(
        self,
        defaults: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.defaults = dict(defaults)
        self.extra = dict(extra or {})
        self.environ = dict(environ or {})
        self.known: dict[tuple[str, str, str], tuple[Any, ...]] = {}

    def learn(self, source: Atom, target: Atom) -> None:
        """Run the pair alone (every column of the target) and keep each cell's signature."""
        text = yaml.safe_dump(
            {
                "version": 1,
                **self.extra,
                "defaults": self.defaults,
                "sources": {"alone": dict(source.spec)},
                "targets": {"only": dict(target.spec)},
            },
            sort_keys=False,
        )
        for cell in run(text, self.environ).cells:
            suffix = cell.target.removeprefix("only")
            self.known[(source.key, target.key, suffix)] = signature(cell)

    def answer(self, source: Atom, target: Atom, suffix: str) -> tuple[Any, ...]:
        key = (source.key, target.key, suffix)
        if key not in self.known:
            self.learn(source, target)
        assert key in self.known, f"the alone run of {key[:2]} has no column {suffix!r}"
        return self.known[key]


@dataclass
class Disagreement:
    seed: int
    source: str
    target: str
    whole: tuple[Any, ...]
    alone: tuple[Any, ...]
    text: str

    def __str__(self) -> str:
        return (
            f"seed {self.seed}: {self.source} x {self.target}\n  in the matrix: {self.whole}\n"
            f"  alone:         {self.alone}\n--- matrix ---\n{self.text}"
        )


def disagreements(
    generated: Generated, oracle: AloneOracle, environ: Mapping[str, str] | None = None
) -> tuple[list[Disagreement], int]:
    """Run the whole matrix; compare each of its cells with the same cell alone. Returns the
    disagreements and the number of cells compared."""
    result = run(generated.text, environ or {})
    found: list[Disagreement] = []
    for cell in result.cells:
        source = generated.sources[cell.source_name]
        target = generated.targets[cell.target_name]
        suffix = cell.target.removeprefix(cell.target_name)
        alone = oracle.answer(source, target, suffix)
        whole = signature(cell)
        if whole != alone:
            found.append(
                Disagreement(generated.seed, cell.source, cell.target, whole, alone, generated.text)
            )
    return found, len(result.cells)


@dataclass
class Sweep:
    matrices: int = 0
    cells: int = 0
    found: list[Disagreement] = field(default_factory=list)


def sweep(
    seeds: Sequence[int],
    make: Callable[[int], Generated],
    oracle: AloneOracle,
    environ: Mapping[str, str] | None = None,
    parallel: int = 8,
) -> Sweep:
    """Every seed's matrix against the oracle. The oracle learns each pair alone first; then
    the matrices run, several at once: each run is independent of the others, and most of a
    run is waiting on sockets and children."""
    generated = [make(seed) for seed in seeds]
    pairs = {
        (source.key, target.key): (source, target)
        for g in generated
        for source in g.sources.values()
        for target in g.targets.values()
        if target.key not in source.avoid and source.key not in target.avoid
    }
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda pair: oracle.learn(*pair), pairs.values()))
        results = list(pool.map(lambda g: disagreements(g, oracle, environ), generated))
    outcome = Sweep(matrices=len(results))
    for found, cells in results:
        outcome.cells += cells
        outcome.found.extend(found)
    return outcome
