"""JUnit XML: one testcase per check × lane; failures carry the evidence."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..matrix import Matrix
from ..suite.outcomes import Outcome
from ..suite.result import LaneStatus
from .escape import xml


def render(matrix: Matrix) -> str:
    root = ET.Element("testsuites", name="archmatrix")
    for lane in matrix.lanes:
        suite = ET.SubElement(root, "testsuite", name=xml(lane.lane))
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
            if c.outcome is Outcome.SKIPPED:
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
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
