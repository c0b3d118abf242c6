"""The gate's verdicts as JUnit XML, for CI systems that show test reports."""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from client.render import verdict_text


def junit_xml(verdicts: Sequence[Any], args: argparse.Namespace) -> str:
    """JUnit XML: one test case per group; a regression is a failure, new/missing are skipped."""
    suite = ET.Element(
        "testsuite",
        name="optbench gate",
        tests=str(len(verdicts)),
        failures=str(sum(v.status == "regression" for v in verdicts)),
        skipped=str(sum(v.status in ("new", "missing") for v in verdicts)),
        errors="0",
    )
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"optbench.{v.problem}", name=v.solver)
        numbers = verdict_text(v)
        if v.status == "regression":
            failure = ET.SubElement(case, "failure", message="; ".join(v.reasons))
            failure.text = numbers
        elif v.status == "new":
            ET.SubElement(case, "skipped", message="not in the baseline")
        elif v.status == "missing":
            ET.SubElement(case, "skipped", message="in the baseline but not in this run")
        else:
            ET.SubElement(case, "system-out").text = f"{v.status}: {numbers}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
