"""The ratchet: new reference figures replace old ones only the better way, unless a reason is given.

A refresh of ``lib/expectations.json`` (``scripts/measure_spread.py``, ``scripts/refresh_expectations.py``)
proposes a new document; :func:`apply` compares it with the committed one, figure by figure:

* a figure that moved the better way by more than its tolerance takes the new reference (the
  improvement is locked in); one that moved within its tolerance keeps the old reference (noise
  does not move references, so they cannot drift the worse way a little at a time), with a tolerance
  wide enough for the runs just measured (:func:`_kept_tolerance`);
* a figure that moved the worse way beyond its tolerance (either way, for ``near`` figures), a
  target expected true that no longer is, a watched figure that disappeared, and a kept reference
  whose tolerance must widen to hold the new runs (the check's pass line moves the worse way) are
  **refused**, unless the refresh names it with a reason (``--accept-worse KEY "why"``); an
  accepted change is recorded in ``docs/accepted_tradeoffs.json`` (figure, old, new, reason,
  commit, date; ``"what": "tolerance"`` where the tolerance widened), which the README's results
  section and the report show.

KEY is the figure's expression, or ``section/notebook:expression`` where the expression alone is
ambiguous.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lib.core.fileio import atomic_write_bytes, load_json, save_json
from lib.core.paths import PROJ_ROOT
from lib.lab.checks import EXPECTATIONS_PATH, dumps_expectations

TRADEOFFS_PATH = PROJ_ROOT / "docs" / "accepted_tradeoffs.json"


@dataclass
class RatchetResult:
    """What a refresh may write, what it refused and the trade-offs it accepted."""

    document: dict
    refused: list[str] = field(default_factory=list)
    accepted: list[dict] = field(default_factory=list)
    improved: list[str] = field(default_factory=list)


def _index(document: dict) -> dict[tuple[str, str, str], dict]:
    return {
        (section, notebook, expectation["figure"]): expectation
        for section, notebooks in document.items()
        for notebook, expectations in notebooks.items()
        for expectation in expectations
    }


def _reason(accepted: dict[str, str], section: str, notebook: str, figure: str) -> str | None:
    return accepted.get(f"{section}/{notebook}:{figure}", accepted.get(figure))


def _worse(old: dict, new_value) -> bool:
    """Did a figure move the wrong way beyond the old expectation's tolerance?"""
    if "expected" in old:
        return new_value != old["expected"]
    if "factor" in old:
        return False  # machine-dependent figures are references of one machine: no ratchet on them
    change = new_value - old["reference"]
    tolerance = old["tolerance"]
    return {"lower": change > tolerance, "higher": -change > tolerance, "near": abs(change) > tolerance}[old["better"]]


def _better(old: dict, new_value) -> bool:
    """Did a figure move the better way beyond its tolerance (an improvement to lock in)?"""
    if "expected" in old or "factor" in old or old["better"] == "near":
        return False
    change = new_value - old["reference"]
    return -change > old["tolerance"] if old["better"] == "lower" else change > old["tolerance"]


def _kept_tolerance(previous: dict, expectation: dict) -> float:
    """The tolerance of a reference kept within its old tolerance, proposed anew as ``expectation``.

    The new runs lie within ``expectation['tolerance']`` of their own reference. The check is
    one-sided for ``lower`` and ``higher`` figures, so around the kept reference the tolerance must
    reach the new runs' worst edge (``near`` figures: either edge); never less than the old
    tolerance. Runs that moved the better way need no wider tolerance; a wider one is asked for
    only where the runs moved the worse way or spread wider, and :func:`apply` asks for its reason.
    """
    moved = expectation["reference"] - previous["reference"]
    worse_edge = {"lower": moved, "higher": -moved, "near": abs(moved)}[previous["better"]]
    return max(previous["tolerance"], round(expectation["tolerance"] + worse_edge, 6))


def current_commit() -> str:
    """The checkout's commit (short), or ``unknown`` outside git."""
    try:
        finished = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJ_ROOT, capture_output=True, text=True, check=True
        )
        return finished.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def apply(old_document: dict, new_document: dict, accepted: dict[str, str] | None = None) -> RatchetResult:
    """Merge ``new_document`` into ``old_document`` under the ratchet's rules (see the module docstring).

    ``accepted`` maps a KEY to the reason a worse figure is accepted. The returned document is
    what may be written when nothing was refused.
    """
    accepted = accepted or {}
    old, new = _index(old_document), _index(new_document)
    result = RatchetResult(document={})
    commit, date = current_commit(), time.strftime("%Y-%m-%d")

    def record(key: tuple[str, str, str], old_value, new_value, reason: str, what: str | None = None) -> None:
        section, notebook, figure = key
        entry = {
            "section": section,
            "notebook": notebook,
            "figure": figure,
            "old": old_value,
            "new": new_value,
            "reason": reason,
            "commit": commit,
            "date": date,
        }
        result.accepted.append(entry | ({"what": what} if what else {}))

    for key, expectation in new.items():
        section, notebook, figure = key
        previous = old.get(key)
        merged = dict(expectation)
        if previous is not None and "flaky" in expectation and previous.get("expected") is True:
            reason = _reason(accepted, section, notebook, figure)  # a target no longer held true: say why
            if reason is None:
                result.refused.append(
                    f"{section}/{notebook}:{figure}: expected True, now flaky ({expectation['flaky']})"
                )
                merged = dict(previous)
            else:
                record(key, True, "flaky", reason)
        elif previous is not None and ("flaky" in previous or "flaky" in expectation):
            pass  # a flaky target stays listed, or is expected again when the runs say so
        elif previous is not None and ("expected" in previous) == ("expected" in expectation):
            new_value = expectation.get("expected", expectation.get("reference"))
            old_value = previous.get("expected", previous.get("reference"))
            if _worse(previous, new_value):
                reason = _reason(accepted, section, notebook, figure)
                if reason is None:
                    result.refused.append(
                        f"{section}/{notebook}:{figure}: {old_value} -> {new_value} ({_words(previous)})"
                    )
                    merged = dict(previous)
                else:
                    record(key, old_value, new_value, reason)
            elif _better(previous, new_value):
                result.improved.append(f"{section}/{notebook}:{figure}: {old_value} -> {new_value}")
            elif "reference" in previous and "factor" not in previous:
                merged["reference"] = previous["reference"]  # within the spread: the reference stays
                if "tolerance" in expectation:  # and its tolerance still holds the runs just measured
                    merged["tolerance"] = _kept_tolerance(previous, expectation)
                    if merged["tolerance"] > previous["tolerance"]:  # a looser check: say why
                        reason = _reason(accepted, section, notebook, figure)
                        if reason is None:
                            result.refused.append(
                                f"{section}/{notebook}:{figure}: tolerance {previous['tolerance']:g} -> "
                                f"{merged['tolerance']:g} to hold the new runs around the kept reference "
                                f"{old_value} (they centre on {new_value})"
                            )
                            merged["tolerance"] = previous["tolerance"]
                        else:
                            record(key, previous["tolerance"], merged["tolerance"], reason, what="tolerance")
        result.document.setdefault(section, {}).setdefault(notebook, []).append(merged)
    for key, previous in old.items():
        if key in new:
            continue
        section, notebook, figure = key
        if previous.get("expected") is True or "reference" in previous:
            old_value = previous.get("expected", previous.get("reference"))
            reason = _reason(accepted, section, notebook, figure)
            if reason is None:
                result.refused.append(f"{section}/{notebook}:{figure}: no longer watched (was {old_value})")
                result.document.setdefault(section, {}).setdefault(notebook, []).append(previous)
            else:
                record(key, old_value, None, reason)
    return result


def _words(expectation: dict) -> str:
    if "expected" in expectation:
        return f"expected {expectation['expected']}"
    return f"{expectation['better']} is better, tolerance {expectation['tolerance']:g}"


def shown_figure(entry: dict) -> str:
    """A trade-off's figure as the README and the report name it: ``(tolerance)`` after it where the
    check's tolerance widened, not its reference moved."""
    return f"{entry['figure']} (tolerance)" if entry.get("what") == "tolerance" else entry["figure"]


def load_tradeoffs() -> list[dict]:
    """Every accepted trade-off so far (``docs/accepted_tradeoffs.json``), oldest first."""
    return load_json(TRADEOFFS_PATH) if TRADEOFFS_PATH.exists() else []


def add_accept_option(parser) -> None:
    """``--accept-worse KEY REASON`` (repeatable) on an argparse parser; read it with ``dict(options.accept_worse)``."""
    parser.add_argument(
        "--accept-worse",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "REASON"),
        help="accept a figure that moved the wrong way (recorded in docs/accepted_tradeoffs.json)",
    )


def flat_to_sections(document: dict) -> dict:
    """An expectations file of the earlier flat format (notebook -> figures) in sections."""
    if not document or all(key in ("notes", "genres", "every_dataset", "bench") for key in document):
        return document
    return {
        "notes": {name: figures for name, figures in document.items() if name != "05_genres"},
        "genres": {name: figures for name, figures in document.items() if name == "05_genres"},
    }


def refresh(candidate: dict, accepted: dict[str, str], *, expectations_path: Path = EXPECTATIONS_PATH) -> int:
    """Apply the ratchet to ``candidate`` against the committed expectations, then write both files.

    Nothing is written when a figure is refused; returns a process exit code.
    """
    path = expectations_path
    result = apply(flat_to_sections(load_json(path)) if path.exists() else {}, candidate, accepted)
    for line in result.improved:
        print(f"improved (new reference): {line}")
    for entry in result.accepted:
        print(
            f"accepted worse: {entry['section']}/{entry['notebook']}:{shown_figure(entry)}: {entry['old']} -> "
            f"{entry['new']} ({entry['reason']})"
        )
    unused = (
        set(accepted)
        - {entry["figure"] for entry in result.accepted}
        - {f"{entry['section']}/{entry['notebook']}:{entry['figure']}" for entry in result.accepted}
    )
    for key in sorted(unused):
        print(f"--accept-worse {key}: nothing worse to accept under that name")
    if result.refused:
        print(f"\nrefused: {len(result.refused)} figure(s) moved the wrong way beyond their tolerance, need a wider")
        print('tolerance, or stopped being watched. Fix the cause, or accept each with --accept-worse KEY "reason":')
        for line in result.refused:
            print(f"  {line}")
        return 1
    atomic_write_bytes(path, dumps_expectations(result.document).encode("utf-8"), overwrite=True)
    if result.accepted:
        save_json(TRADEOFFS_PATH, load_tradeoffs() + result.accepted, overwrite=True)
    return 0
