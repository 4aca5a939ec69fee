"""The audit for people (tabulate tables) and the predicted-vs-actual view of a matrix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tabulate import tabulate

from ..matrix import Matrix
from ..suite.outcomes import Outcome
from ..suite.result import LaneStatus
from .image import version_text
from .isa import GUARDED, ORDER, UNGUARDED, UNKNOWN
from .predict import Prediction
from .report import AuditReport, BinaryAudit

_ABI_SUFFIX = re.compile(r"\.cpython-\d+[a-z]*-[A-Za-z0-9_-]+\.so$|\.abi3\.so$")


def cell(prediction: Prediction) -> str:
    return f"{prediction.glyph} {prediction.value}"


def _short(path: str) -> str:
    return _one_line(_ABI_SUFFIX.sub(".so", path))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_TEXT = 200


def _one_line(text: str) -> str:
    """Text from a file (a member name, a parser's message) as one short line, control characters visible."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _notable(b: BinaryAudit) -> bool:
    if b.error or b.tag_problems():
        return True
    if any(p.prediction is not Prediction.PASS for p in b.predictions.values()):
        return True
    return any(im.scan.extensions or im.links for im in b.images)


def _isa(b: BinaryAudit) -> str:
    parts = []
    for im in b.images:
        exts = " ".join(im.scan.sorted_extensions()) or "—"
        if im.scan.extensions and not im.scan.complete:
            exts += " (sampled)"
        parts.append(f"{im.arch_name}: {exts}" if len(b.images) > 1 else exts)
    return "; ".join(parts)


def _guarded(b: BinaryAudit) -> str:
    """Per binary: yes (and the evidence), unknown (a probe the audit cannot tie to the code), or no."""
    if not any(im.scan.extensions for im in b.images):
        return ""
    answers: dict[str, list[str]] = {}
    for im in b.images:
        for ext in im.scan.sorted_extensions():
            status, why = im.scan.guard_status(ext)
            answers.setdefault(status, [])
            if why and why not in answers[status]:
                answers[status].append(why)
    for status, word in ((UNGUARDED, "no"), (UNKNOWN, "unknown"), (GUARDED, "yes")):
        if status in answers:
            return f"{word}: {'; '.join(answers[status])}" if answers[status] else word
    return ""


def _min_os(b: BinaryAudit) -> str:
    out = []
    for im in b.images:
        if im.glibc:
            out.append(f"glibc {version_text(im.glibc)}")
        if im.min_macos:
            out.append(f"macOS {version_text(im.min_macos)}")
    text = ", ".join(dict.fromkeys(out))
    return text + (" ✗ tag" if b.tag_problems() else "")


def binary_rows(report: AuditReport, *, everything: bool = False) -> list[list[str]]:
    rows = []
    for b in report.binaries:
        if not (everything or _notable(b)):
            continue
        if b.error:
            rows.append([_short(b.path), "?", "", "", f"unreadable: {_one_line(b.error)}", "",
                         *(cell(Prediction.UNKNOWN) for _ in report.lanes)])
            continue
        rows.append([
            _short(b.path),
            "+".join(im.arch_name for im in b.images),
            _min_os(b),
            ", ".join(dict.fromkeys(lib for im in b.images for lib in im.links)),
            _isa(b),
            _guarded(b),
            *(cell(b.predictions[ln.id].prediction) for ln in report.lanes),
        ])
    return rows


def render(report: AuditReport, *, everything: bool = False) -> str:
    lines = [f"audit of {', '.join(report.paths)}: {len(report.binaries)} native binaries "
             f"in {report.duration_s:.1f} s"]
    rows = binary_rows(report, everything=everything)
    if rows:
        headers = ["binary", "arch", "min OS", "BLAS/OpenMP", "ISA extensions", "guarded",
                   *(ln.id for ln in report.lanes)]
        lines += ["", tabulate(rows, headers=headers, tablefmt="simple")]
    hidden = len(report.binaries) - len(rows)
    if hidden:
        lines.append(f"\n{hidden} more binaries: no AVX/SVE code, no BLAS/OpenMP links, loadable in "
                     "every lane audited (--all lists them)")
    lane_rows = []
    for ln in report.lanes:
        counts = report.counts(ln.id)
        detail = ", ".join(f"{n} {p.value}" for p, n in sorted(counts.items(), key=lambda x: -x[0].severity)
                           if p is not Prediction.PASS)
        lacks = ", ".join(sorted(ln.missing, key=lambda e: ORDER.get(e, len(ORDER)))) or "nothing scanned for"
        lane_rows.append([ln.id, f"{ln.arch} {ln.os}", f"{ln.cpu}; lacks {lacks}",
                          cell(report.lane_prediction(ln.id)), detail])
    lines += ["", tabulate(lane_rows, headers=["lane", "loads", "CPU", "prediction", "binaries"],
                           tablefmt="simple")]
    reasons, warnings = [], []
    for b in report.binaries:
        if b.error:
            warnings.append(f"warning: {_short(b.path)}: unreadable: {_one_line(b.error)}; "
                            "its lanes are unknown")
            continue
        for lane_id, p in b.predictions.items():
            if p.prediction.failed:
                reasons.append(f"{lane_id}: {_short(b.path)}: {p.prediction.value}: {p.reason}")
            elif p.prediction is Prediction.UNKNOWN:
                warnings.append(f"warning: {lane_id}: {_short(b.path)}: unknown: {p.reason}")
        reasons += [f"{_short(b.path)}: {problem}" for problem in b.tag_problems()]
    if reasons or warnings:
        lines += ["", *reasons, *warnings]
    return "\n".join(lines)


# ------------------------------------------------------------- predicted vs actual

# The outcomes an audit can predict; any other failure is outside what it reads.
_PREDICTABLE = (Outcome.ILLEGAL_INSTRUCTION, Outcome.WRONG_ARCH)


@dataclass(frozen=True)
class CompareRow:
    lane: str
    predicted: Prediction
    actual: str  # the outcome the lane showed, "not run", or "not in the matrix"
    agree: bool | None  # None: nothing to compare with
    note: str = ""


def compare(report: AuditReport, matrix: Matrix) -> list[CompareRow]:
    """Per audited lane: the predicted outcome next to what the lane's checks actually did.

    A lane's actual outcome, for this comparison, is illegal-instruction or
    wrong-arch when any check showed it, else pass; failures the audit
    cannot see (numeric mismatches, timeouts, …) are listed in the note.
    """
    rows = []
    by_id = {ln.lane: ln for ln in matrix.lanes}
    for target in report.lanes:
        predicted = report.lane_prediction(target.id)
        lane = by_id.get(target.id)
        if lane is None:
            rows.append(CompareRow(target.id, predicted, "not in the matrix", None))
            continue
        if lane.status != LaneStatus.RAN:  # predicted cells are never the observation to compare with
            what = f"{lane.status}, cells predicted" if lane.predicted else lane.status
            rows.append(CompareRow(target.id, predicted, f"not run ({what})", None, lane.reason))
            continue
        failed = lane.failed_checks
        shown = [o for o in _PREDICTABLE if any(c.outcome is o for c in failed)]
        actual = shown[0] if shown else Outcome.PASS
        other = sorted({c.outcome.value for c in failed if c.outcome not in _PREDICTABLE})
        hit = [c.id for c in failed if c.outcome is actual]
        note = ""
        if hit:
            note = f"{len(hit)} checks: {', '.join(hit[:4])}" + (" …" if len(hit) > 4 else "")
        if other:
            note = "; ".join(filter(None, [note, f"outside the audit: {', '.join(other)}"]))
        expected = predicted.outcome
        if expected is None:  # unknown: the matrix decides, nothing to agree with
            rows.append(CompareRow(target.id, predicted, actual.value, None, note))
            continue
        rows.append(CompareRow(target.id, predicted, actual.value, expected is actual, note))
    return rows


def render_compare(rows: list[CompareRow]) -> str:
    def agree(value: bool | None) -> str:
        return "–" if value is None else "✔ yes" if value else "✘ no"

    table = [[r.lane, cell(r.predicted), r.actual, agree(r.agree), r.note] for r in rows]
    return tabulate(table, headers=["lane", "predicted", "actual", "agree", "note"], tablefmt="simple")
