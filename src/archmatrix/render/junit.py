"""JUnit XML: one testsuite per lane, one testcase per check × lane; failures carry the evidence.

Each testsuite carries what Jenkins, GitLab and the test-report actions
display: ``timestamp`` (the lane's start, UTC, without a zone as the JUnit
schema wants), ``time`` (the lane's duration), ``hostname`` (the lane id: a
lane is the machine its checks ran on, a container or an emulated CPU, and
the host's own name is not recorded) and ``<properties>``: platform, how it
ran, emulator, CPU model, CPU features, BLAS, Python, archmatrix version.
"""

from __future__ import annotations

import datetime as _dt
import xml.etree.ElementTree as ET

from .. import __version__
from ..matrix import Matrix
from ..suite.outcomes import Outcome
from ..suite.result import LaneResult, LaneStatus
from ..summary import summarise
from .escape import xml

UNKNOWN = "?"


def timestamp(started: str) -> str | None:
    """``started`` (ISO 8601) as the JUnit schema's dateTime: UTC, no zone; None when unreadable."""
    try:
        when = _dt.datetime.fromisoformat(started)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return when.isoformat(timespec="seconds")


def properties(lane: LaneResult, lock: dict[str, str], version: str = __version__) -> dict[str, str]:
    """The lane's facts a CI test report shows, every one present ("?" when the lane did not say)."""
    rows = summarise(lane, lock).rows
    emulation = lane.facts.get("emulation") or {}
    python = lane.facts.get("python") or {}
    return {
        "platform": rows["platform"],
        "how": rows["how"] if lane.facts else UNKNOWN,
        "emulator": str(emulation.get("emulator") or ("none" if lane.facts else UNKNOWN)),
        "cpu_model": str(emulation.get("cpu_model") or ("host" if lane.facts else UNKNOWN)),
        "cpu_features": rows["CPU"],
        "blas": rows["BLAS"],
        "python": str(python.get("version") or UNKNOWN) if isinstance(python, dict) else UNKNOWN,
        "archmatrix_version": version,
        "runner": lane.runner,
        "status": lane.status,
        "required": "true" if lane.required else "false",
    }


def render(matrix: Matrix, *, version: str = __version__) -> str:
    """The XML; ``version`` is the archmatrix version recorded (tests pin it)."""
    root = ET.Element("testsuites", name="archmatrix")
    total_time = 0.0
    for lane in matrix.lanes:
        suite = ET.SubElement(root, "testsuite", name=xml(lane.lane))
        stamp = timestamp(lane.started)
        if stamp:
            suite.set("timestamp", stamp)
        suite.set("hostname", xml(lane.lane))
        suite.set("time", f"{lane.duration_s:.3f}")
        total_time += lane.duration_s
        props = ET.SubElement(suite, "properties")
        for name, prop in properties(lane, dict(matrix.lock), version).items():
            ET.SubElement(props, "property", name=name, value=xml(prop))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if lane.status in (LaneStatus.SKIPPED, LaneStatus.INFRA_ERROR) and not lane.checks:
            case = ET.SubElement(suite, "testcase", classname=xml(lane.lane), name="lane")
            counts["tests"] += 1
            if lane.status == LaneStatus.SKIPPED:
                hint = f" — hint: {lane.hint}" if lane.hint else ""
                ET.SubElement(case, "skipped", message=xml(f"{lane.reason}{hint}"))
                counts["skipped"] += 1
            else:
                err = ET.SubElement(case, "error", message=xml(lane.reason), type="infra-error")
                err.text = xml(lane.hint)
                counts["errors"] += 1
        for c in lane.checks:
            counts["tests"] += 1
            case = ET.SubElement(suite, "testcase", classname=xml(lane.lane), name=xml(c.id),
                                 time=f"{c.duration_s:.3f}")
            if c.predicted:
                # not an executed test: skipped, the prediction in the message and as properties
                cprops = ET.SubElement(case, "properties")  # first, as the JUnit schema orders them
                ET.SubElement(cprops, "property", name="predicted", value="true")
                ET.SubElement(cprops, "property", name="predicted_outcome", value=c.outcome.value)
                for key in ("wheel", "binary", "slice", "instruction", "reason"):
                    if c.evidence.get(key):
                        ET.SubElement(cprops, "property", name=key, value=xml(str(c.evidence[key])))
                what = f"predicted {c.outcome.value} (not run): {c.message}"
                ET.SubElement(case, "skipped", message=xml(what))
                counts["skipped"] += 1
            elif c.outcome is Outcome.SKIPPED:
                ET.SubElement(case, "skipped", message=xml(c.message))
                counts["skipped"] += 1
            elif c.outcome.failed:
                tag = "error" if c.outcome is Outcome.INFRA_ERROR else "failure"
                node = ET.SubElement(case, tag, message=xml(f"{c.outcome.value}: {c.message}"),
                                     type=c.outcome.value)
                evidence = [c.message] + [f"{k}: {v}" for k, v in c.evidence.items()]
                node.text = xml("\n".join(str(e) for e in evidence))
                counts["errors" if tag == "error" else "failures"] += 1
        for key, value in counts.items():
            suite.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
