"""The lane result file: round trip, and every way a file can be unusable (issue 2, "Results")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archmatrix.suite.outcomes import Outcome
from archmatrix.suite.result import (
    SCHEMA,
    SCHEMA_VERSION,
    CheckResult,
    LaneResult,
    LaneStatus,
    LaneWarning,
    ResultFileError,
    load,
    save,
    write_json_atomic,
    write_text_atomic,
)


def sample() -> LaneResult:
    return LaneResult(
        lane="linux-x86_64-noavx",
        runner="qemu",
        status=LaneStatus.RAN,
        started="2026-01-02T03:04:05+00:00",
        duration_s=12.5,
        required=False,
        facts={
            "os": "Linux",
            "machine": "x86_64",
            "python": {"version": "3.11.7", "bits": 64},
            "translated": None,
            "emulation": {"emulator": "qemu-x86_64", "cpu_model": "Westmere"},
            "cpu": {"present": ["SSE42"], "absent": ["AVX", "AVX2"]},
            "packages": {"numpy": "2.4.6"},
        },
        checks=[
            CheckResult("import.numpy", Outcome.PASS, 0.25, metrics={"version": "2.4.6"}),
            CheckResult(
                "blas.loaded",
                Outcome.ILLEGAL_INSTRUCTION,
                0.5,
                message="qemu: uncaught target signal 4 (Illegal instruction) - core dumped",
                evidence={"returncode": -4, "signal": "SIGILL", "stderr_tail": "qemu: uncaught …\n"},
            ),
            CheckResult(
                "linalg.solve",
                Outcome.PASS,
                0.125,
                metrics={"x.float64": [1.0, 2.0], "n": 3},
                warnings=["slow"],
            ),
        ],
        warnings=[LaneWarning("emulated", "this process is emulated by qemu-x86_64", "")],
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lane.json"
    result = sample()
    save(result, path)
    assert load(path) == result
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["checks"][1]["outcome"] == "illegal-instruction"


def test_round_trip_of_a_skipped_lane(tmp_path: Path) -> None:
    path = tmp_path / "skipped.json"
    result = LaneResult(
        "macos-arm64",
        "macos",
        status=LaneStatus.SKIPPED,
        reason="this host is Linux",
        hint="run it on an Apple Silicon Mac",
    )
    save(result, path)
    loaded = load(path)
    assert loaded == result
    assert not loaded.ok


def test_lane_result_helpers() -> None:
    result = sample()
    assert [c.id for c in result.failed_checks] == ["blas.loaded"]
    assert not result.ok
    assert result.check("linalg.solve") is result.checks[2]
    assert result.check("nope") is None
    result.checks[1].outcome = Outcome.SKIPPED
    assert result.ok


# ---------------------------------------------------------------- rejected files


def _write(tmp_path: Path, text: str, name: str = "lane.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _valid_text(tmp_path: Path) -> str:
    path = tmp_path / "valid.json"
    save(sample(), path)
    return path.read_text(encoding="utf-8")


def _rejected(path: Path) -> str:
    with pytest.raises(ResultFileError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    text = _valid_text(tmp_path)
    message = _rejected(_write(tmp_path, text[: len(text) // 2]))
    assert "JSON" in message or "truncated" in message


def test_file_cut_after_a_value_says_truncated(tmp_path: Path) -> None:
    text = _valid_text(tmp_path)
    cut = text.index('"runner"')  # just before a key: a clean cut between two values
    message = _rejected(_write(tmp_path, text[:cut]))
    assert "truncated" in message


@pytest.mark.parametrize(
    "cut_after",
    ['"stderr_tail": "qemu: unc', '"required": f', '"duration_s": 12.', '"lane": "linux-x86'],
    ids=["inside-long-string", "inside-literal", "inside-number", "inside-short-string"],
)
def test_file_cut_anywhere_says_truncated(tmp_path: Path, cut_after: str) -> None:
    text = _valid_text(tmp_path)
    cut = text.index(cut_after) + len(cut_after)
    assert "truncated" in _rejected(_write(tmp_path, text[:cut]))


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    assert "empty" in _rejected(_write(tmp_path, ""))
    assert "empty" in _rejected(_write(tmp_path, "  \n\n"))


def test_not_json_is_rejected(tmp_path: Path) -> None:
    message = _rejected(_write(tmp_path, "<html><body>502 Bad Gateway</body></html>\n"))
    assert "not valid JSON" in message
    assert "line 1" in message


def test_two_documents_in_one_file_are_rejected(tmp_path: Path) -> None:
    text = _valid_text(tmp_path)
    assert "not valid JSON" in _rejected(_write(tmp_path, text + text))


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"schemaVersion": 1, "label": "host", "message": "pass", "color": "green"},
            "not an archmatrix lane result",
        ),
        ({"name": "left-pad", "version": "1.3.0", "main": "index.js"}, "not an archmatrix lane result"),
        ({"schema": "archmatrix/matrix", "schema_version": 1, "lanes": []}, "not an archmatrix lane result"),
        ([{"schema": SCHEMA}], "expected a JSON object, found list"),
        ("host", "expected a JSON object, found str"),
    ],
    ids=["shields-endpoint", "package-json", "merged-matrix", "list", "string"],
)
def test_foreign_json_is_rejected(tmp_path: Path, document: Any, expected: str) -> None:
    assert expected in _rejected(_write(tmp_path, json.dumps(document)))


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_wrong_schema_version_is_rejected(tmp_path: Path, version: Any) -> None:
    data = sample().to_dict()
    data["schema_version"] = version
    message = _rejected(_write(tmp_path, json.dumps(data)))
    assert "schema_version" in message
    assert repr(version) in message


def test_unknown_outcome_is_rejected(tmp_path: Path) -> None:
    data = sample().to_dict()
    data["checks"][1]["outcome"] = "exploded"
    message = _rejected(_write(tmp_path, json.dumps(data)))
    assert "checks[1]" in message
    assert "unknown outcome 'exploded'" in message


def test_unknown_lane_status_is_rejected(tmp_path: Path) -> None:
    data = sample().to_dict()
    data["status"] = "maybe"
    assert "unknown lane status 'maybe'" in _rejected(_write(tmp_path, json.dumps(data)))


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("lane",), 7, "field 'lane' should be str, found int"),
        (("lane",), _DELETE, "missing field 'lane'"),
        (("runner",), None, "field 'runner' should be str, found NoneType"),
        (("required",), "yes", "field 'required' should be bool, found str"),
        (("required",), 1, "field 'required' should be bool, found int"),
        (("duration_s",), "12.5", "field 'duration_s' should be int or float, found str"),
        (("duration_s",), True, "field 'duration_s' should be int or float, found bool"),
        (("facts",), ["os", "Linux"], "field 'facts' should be dict, found list"),
        (("checks",), {"import.numpy": "pass"}, "field 'checks' should be list, found dict"),
        (("checks", 0), "pass", "checks[0]: expected an object"),
        (("checks", 0, "id"), 3, "checks[0]: field 'id' should be str, found int"),
        (("checks", 0, "outcome"), _DELETE, "checks[0]: missing field 'outcome'"),
        (("checks", 2, "metrics"), [1.0], "checks[2]: field 'metrics' should be dict, found list"),
        (("checks", 1, "evidence"), "SIGILL", "checks[1]: field 'evidence' should be dict, found str"),
        (("checks", 2, "duration_s"), "fast", "checks[2]: field 'duration_s' should be int or float"),
        (("warnings", 0), "emulated", "warnings[0]: expected an object"),
        (("warnings", 0, "message"), _DELETE, "warnings[0]: missing field 'message'"),
    ],
)
def test_wrong_field_types_are_rejected(
    tmp_path: Path, path: tuple[Any, ...], value: Any, expected: str
) -> None:
    data = sample().to_dict()
    _set(data, path, value)
    assert expected in _rejected(_write(tmp_path, json.dumps(data)))


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    assert "no such file" in _rejected(tmp_path / "absent.json")


def test_undecodable_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00{\x80\x81")
    assert "cannot read" in _rejected(path)


def test_null_optional_fields_take_their_defaults(tmp_path: Path) -> None:
    data = sample().to_dict()
    data["reason"] = None
    data["checks"][0]["message"] = None
    loaded = load(_write(tmp_path, json.dumps(data)))
    assert loaded.reason == ""
    assert loaded.checks[0].message == ""


# ---------------------------------------------------------------- atomic writes


class Unprintable:
    """A value json can only serialise through ``default=str`` — and whose ``__str__`` fails."""

    def __str__(self) -> str:
        raise RuntimeError("cannot describe myself")


def test_write_json_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "results" / "host.json"  # the directory is created
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["host.json"]


def test_write_json_atomic_stringifies_unknown_values(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_json_atomic(path, {"path": Path("/tmp/x")})
    assert json.loads(path.read_text(encoding="utf-8")) == {"path": "/tmp/x"}


def test_failed_serialisation_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    save(sample(), path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="cannot describe myself"):
        write_json_atomic(path, {"ok": [1, 2, 3], "bad": Unprintable()})
    assert path.read_bytes() == before
    assert load(path) == sample()
    assert [p.name for p in tmp_path.iterdir()] == ["host.json"]


def test_write_failing_midway_removes_the_temp_file_and_keeps_the_old_file(tmp_path: Path) -> None:
    """The temp file exists when the write fails (a lone surrogate cannot be encoded as UTF-8)."""
    path = tmp_path / "host.json"
    path.write_text("old content\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, "x" * 100_000 + "\ud800")
    assert path.read_text(encoding="utf-8") == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["host.json"]
