"""Hostile configurations (issue 16): each is exit 2 with one located line, never a traceback.

The message is ``file:line:col: key.path: message``; YAML alias tricks are
refused before anything is expanded, so a bomb costs neither time nor memory.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from archmatrix import cli
from archmatrix.config import ConfigError, check_selection, parse

LOCK = 'lock: {python: "3.11", packages: {numpy: "2.4.6"}}\n'
HOST = "lanes: [{id: host, runner: venv}]\n"


def run_plan(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    code = cli.main(["plan", "--config", str(path)])
    err = capsys.readouterr().err
    return code, err


def assert_one_line(err: str, where: str, *needles: str) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert where in lines[0], err
    for needle in needles:
        assert needle in lines[0], err


CASES = {
    # name: (yaml, "file:line:col" suffix, words in the message)
    "duplicate top-level key": (LOCK + HOST + "lanes: [{id: other, runner: venv}]\n",
                                "m.yaml:3:1", ("lanes: duplicate key", "first at line 2, column 1")),
    "duplicate nested key": ('lock: {python: "3.11", python: "3.12", packages: {numpy: "2.4.6"}}\n' + HOST,
                             "m.yaml:1:24", ("lock.python: duplicate key", "line 1, column 8")),
    "recursive alias": (LOCK + "lanes: &l [{id: host, runner: venv, options: *l}]\n",
                        "m.yaml:2:8", ("anchors and aliases",)),
    "plain alias": (LOCK + "x: &py venv\nlanes: [{id: host, runner: *py}]\n", "m.yaml:2:4", ("&py",)),
    "deep nesting": (LOCK + HOST + "checks: {select: " + "[" * 200 + "]" * 200 + "}\n",
                     "m.yaml:3:", ("nested more than",)),
    "nan timeout": (LOCK + HOST + "checks: {timeout: .nan}\n", "m.yaml:3:10",
                    ("checks.timeout", "finite")),
    "inf timeout": (LOCK + HOST + "checks: {timeout: .inf}\n", "m.yaml:3:10", ("finite",)),
    "nan per-check timeout": (LOCK + HOST + "checks: {timeouts: {linalg.svd: .nan}}\n", "m.yaml:3:",
                              ("checks.timeouts.linalg.svd", "finite")),
    "nan rtol": (LOCK + HOST + "checks: {tolerances: {float64: {rtol: .nan, atol: 0}}}\n", "m.yaml:3:",
                 ("checks.tolerances.float64.rtol", "finite")),
    "nan drift_rtol": (LOCK + HOST + "checks: {drift_rtol: .NaN}\n", "m.yaml:3:", ("finite",)),
    "huge integer": (LOCK + HOST + "checks: {timeout: " + "9" * 400 + "}\n", "m.yaml:3:",
                     ("finite", "an integer of 400 digits")),
    "integer past Python's digit limit": (LOCK + HOST + "checks: {timeout: " + "9" * 5000 + "}\n", "m.yaml",
                                          ("not readable",)),
    "version 1..2": ('lock: {python: "3.11", packages: {numpy: "1..2"}}\n' + HOST, "m.yaml:1:35",
                     ("lock.packages.numpy", "PEP 440", "'1..2'")),
    "version 0x10": ('lock: {python: "3.11", packages: {numpy: "0x10"}}\n' + HOST, "m.yaml:1:35",
                     ("PEP 440",)),
    "version 1.0+": ('lock: {python: "3.11", packages: {numpy: "1.0+"}}\n' + HOST, "m.yaml:1:35",
                     ("PEP 440",)),
    "name pip reads as an option": (
        'lock: {python: "3.11", packages: {"--index-url=http://127.0.0.1:9/simple": "1.0"}}\n' + HOST,
        "m.yaml:1:35", ("not a package name",)),
    "name with a semicolon": ('lock: {python: "3.11", packages: {"numpy; rm": "1.0"}}\n' + HOST,
                              "m.yaml:1:35", ("not a package name",)),
    "same package twice": ('lock: {python: "3.11", packages: {numpy: "2.4.6", NumPy: "2.4.6"}}\n' + HOST,
                           "m.yaml:1:51", ("lock.packages.NumPy", "same package as 'numpy'")),
    "lane id with a trailing newline": (LOCK + 'lanes: [{id: "host\\n", runner: venv}]\n', "m.yaml:2:10",
                                        ("lanes[0].id", "'host\\n'")),
    "lane id with a control character": (LOCK + 'lanes: [{id: "ho\\x1bst", runner: venv}]\n',
                                         "m.yaml:2:10", ("lanes[0].id",)),
    "lane id of 300 characters": (LOCK + "lanes: [{id: " + "a" * 300 + ", runner: venv}]\n", "m.yaml:2:10",
                                  ("at most 64 characters",)),
    "lane id matrix": (LOCK + "lanes: [{id: matrix, runner: venv}]\n", "m.yaml:2:10",
                       ("'matrix' is a name archmatrix's own outputs use",)),
    "lane id junit": (LOCK + "lanes: [{id: junit, runner: venv}]\n", "m.yaml:2:10", ("reserved",)),
    "empty select": (LOCK + HOST + "checks: {select: []}\n", "m.yaml:3:", ("selects no check",)),
    "platform s390x on a required lane": (
        LOCK + "lanes: [{id: d, runner: docker, required: true, options: {platform: linux/s390x}}]\n",
        "m.yaml:2:", ("lanes[0].options.platform", "'linux/s390x'")),
    "macos arch ppc": (LOCK + "lanes: [{id: m, runner: macos, options: {arch: ppc}}]\n", "m.yaml:2:",
                       ("lanes[0].options.arch", "'ppc'")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_config_is_exit_2_with_one_located_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, where, needles = CASES[name]
    code, err = run_plan(tmp_path, text, capsys)
    assert code == 2, err
    assert_one_line(err, where, *needles)


def test_alias_bomb_is_refused_at_once_in_bounded_memory(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # 9 levels of 9 aliases: 9**9 strings if expanded (the 563-byte bomb of the review)
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = LOCK + HOST + "\n".join(levels) + "\n"
    assert len(text.encode()) < 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    code, err = run_plan(tmp_path, text, capsys)
    assert code == 2
    assert_one_line(err, "m.yaml:3:5", "anchors and aliases")
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


def test_exponent_without_a_dot_is_a_number() -> None:
    cfg = parse(LOCK + HOST + "checks: {drift_rtol: 1e-6, timeout: 2E2,"
                " tolerances: {float64: {rtol: 1e-9, atol: 1e-12}}}\n", Path("m.yaml"))
    assert cfg.checks.drift_rtol == 1e-6
    assert cfg.checks.timeout == 200.0
    assert cfg.checks.tolerances["float64"].rtol == 1e-9


def test_valid_pep440_versions_and_pep508_names_pass() -> None:
    cfg = parse('lock: {python: "3.11", packages: {scikit-learn: "1.9.1", zope.interface: "7.0.post1",'
                ' Foo_Bar: "1!2.0rc1+local.7"}}\n' + HOST, Path("m.yaml"))
    assert dict(cfg.lock.packages) == {"scikit-learn": "1.9.1", "zope.interface": "7.0.post1",
                                       "Foo_Bar": "1!2.0rc1+local.7"}


# --- checks.select / exclude / timeouts against the known check ids ---------------------------


def selection_error(tmp_path: Path, checks: str, *, modules: str = "") -> str:
    path = tmp_path / "m.yaml"
    path.write_text(LOCK + HOST + f"checks: {{{checks}{modules}}}\n")
    cfg = parse(path.read_text(), path)
    with pytest.raises(ConfigError) as info:
        check_selection(cfg)
    return str(info.value)


def test_select_typo_is_an_error_with_its_place_and_a_suggestion(tmp_path: Path) -> None:
    message = selection_error(tmp_path, 'select: ["import.*", "lnialg.*"]')
    assert message == (f"{tmp_path / 'm.yaml'}:3:31: checks.select[1]: 'lnialg.*' matches no check "
                       "(perhaps you meant 'linalg.*'?)")


def test_exclude_and_timeouts_that_match_nothing_are_errors(tmp_path: Path) -> None:
    assert "checks.exclude[0]: 'prf.*' matches no check" in selection_error(tmp_path, 'exclude: ["prf.*"]')
    message = selection_error(tmp_path, "timeouts: {linalg.svdd: 5}")
    assert "m.yaml:3:21: checks.timeouts.linalg.svdd: no check has the id 'linalg.svdd'" in message
    assert "perhaps you meant 'linalg.svd'" in message


def test_select_typo_through_the_cli_is_exit_2_before_any_lane_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(LOCK + HOST + 'checks: {select: ["lnialg.*"]}\n')
    code = cli.main(["lane", "host", "--config", str(path), "--results", str(tmp_path / "r"),
                     "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2
    assert_one_line(err, "m.yaml:3:19", "checks.select[0]", "matches no check")
    assert not (tmp_path / "w").exists()  # nothing was staged


def test_patterns_of_a_user_module_file_are_known(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def check_one(ctx):\n    pass\n")
    path = tmp_path / "m.yaml"
    path.write_text(LOCK + HOST + 'checks: {select: ["mine.*", "import.*"], timeouts: {mine.one: 3},'
                    ' user_modules: [mine.py]}\n')
    check_selection(parse(path.read_text(), path))  # no error
    path.write_text(LOCK + HOST + 'checks: {select: ["mine.two"], user_modules: [mine.py]}\n')
    with pytest.raises(ConfigError, match=r"'mine\.two' matches no check"):
        check_selection(parse(path.read_text(), path))


def test_a_dotted_user_module_makes_ids_unknown_so_no_pattern_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(LOCK + HOST + 'checks: {select: ["mypkg_checks.*"], user_modules: [mypkg.checks]}\n')
    check_selection(parse(path.read_text(), path))  # its ids live in the lane's environment
