"""Every `afps` option is checked before any work starts: a bad value ends with exit code 2 and
one line naming the option and what it accepts, never a traceback, a half-done job, or a
silently accepted useless value; outputs that cannot be written are refused up front."""

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afps_gui.cli import build_parser, main, validate
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.errors import AfpsError

SMALL = ["--size", "64", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("data"), n_normal=14, n_per_type=6, size=(64, 64)
    )


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """A real `afps fit --json` on the demo set: (model file, its JSON, exit code)."""
    folder = tmp_path_factory.mktemp("fit")
    model, out = folder / "padim.pt", folder / "fit.json"
    code = main(["fit", str(data), *SMALL, "--out", str(model), "--json", str(out)])
    return model, out, code


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# --- bad values: exit 2, one line naming the option and its range, nothing written --------

BAD_VALUES = [
    # (command and its other arguments, option, value, words the message must hold)
    ("fit", "--batch", "0", "between 1 and 1024"),
    ("train", "--batch-size", "0", "between 1 and 4096"),
    ("experiment", "--batch-size", "0", "between 1 and 4096"),
    ("train", "--test-fraction", "2", ">= 0 and < 1"),
    ("experiment", "--test-fraction", "1", ">= 0 and < 1"),
    ("train", "--lr", "nan", "finite number > 0"),
    ("experiment", "--lr", "-1", "finite number > 0"),
    ("evaluate", "--sigma", "nan", "finite number between 0 and 1000"),
    ("evaluate", "--sigma", "inf", "finite number between 0 and 1000"),
    ("evaluate", "--size", "100000", "sides between 32 and 4096"),
    ("fit", "--size", "64x5000", "sides between 32 and 4096"),
    ("evaluate", "--d", "0", "between 1 and 100000"),
    ("evaluate", "--d", "-3", "between 1 and 100000"),
    ("evaluate", "--pool", "0", "between 1 and 15"),
    ("evaluate", "--pool", "2", "odd integer"),
    ("train", "--epochs", "0", "between 1 and 100000"),
    ("experiment", "--epochs", "0", "between 1 and 100000"),
    ("evaluate", "--seed", "-1", "between 0 and 4294967295"),
    ("evaluate", "--memory", "0", "between 1 and 10000000"),
    ("evaluate", "--n-fit", "0", "between 1 and 10000000"),
    ("evaluate", "--tune-budget", "inf", "finite number > 0"),
    ("tune", "--budget", "-5", "finite number > 0"),
    ("train", "--n", "0", "between 1 and 100000"),
    ("train", "--afps-sd", "0", "finite number > 0 and <= 1"),
    ("experiment", "--n", "10,0", "between 1 and 100000"),
    ("experiment", "--n", ",", "must list at least one of the patch counts"),
    ("experiment", "--sd", "0.1,nan", "finite number > 0 and <= 1"),
    ("experiment", "--strategies", "afps,bogus", "each one of afps"),
    ("experiment", "--sd-n", "0", "between 1 and 100000"),
    ("experiment", "--seeds", "0", "between 1 and 1000"),
    ("demo", "--normal", "0", "between 1 and 100000"),
    ("demo", "--per-type", "-1", "between 0 and 100000"),
]


def command_line(command: str, data: Path, tmp: Path) -> list[str]:
    """A command that would run (and write into ``tmp``) if its options were good."""
    return {
        "fit": ["fit", str(data), "--out", str(tmp / "m.pt"), "--json", str(tmp / "r.json")],
        "evaluate": ["evaluate", str(data), "--json", str(tmp / "r.json")],
        "tune": ["tune", str(data), "--json", str(tmp / "r.json")],
        "train": [
            "train",
            str(data),
            "--padim",
            str(tmp / "p.pt"),
            "--classes",
            "Spot,Scratch",
            "--out",
            str(tmp / "c.pt"),
            "--json",
            str(tmp / "r.json"),
        ],
        "experiment": ["experiment", str(data), "--classes", "Spot,Scratch", "--out", str(tmp)],
        "demo": ["demo", str(tmp / "demo")],
    }[command] + ["--quiet"] * (command != "demo")


@pytest.mark.parametrize("command, option, value, words", BAD_VALUES)
def test_bad_values_exit_2_naming_the_option(data, tmp_path, capsys, command, option, value, words):
    out = tmp_path / "out"
    out.mkdir()
    argv = command_line(command, data, out) + [f"{option}={value}"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"afps {command}: error: argument {option}: must "), err
    assert words in last and "Traceback" not in err
    assert files_under(out) == set()


def test_the_installed_command_prints_no_traceback(data, tmp_path):
    afps = Path(sys.executable).with_name("afps")
    if not afps.exists():
        pytest.skip("the afps script is not installed in this environment")
    res = subprocess.run(
        [str(afps), "evaluate", str(data), "--size", "100000", "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "argument --size: must be N or HxW with sides between 32 and 4096" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "r.json").exists()


# --- outputs that cannot be written are refused before the work -----------------------------


def test_fit_out_in_a_folder_that_cannot_be_created_fails_before_fitting(data, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "sub" / "m.pt"
    assert main(["fit", str(data), *SMALL, "--out", str(target)]) == 2
    captured = capsys.readouterr()
    assert "afps: error: argument --out: cannot create" in captured.err
    assert "is a file, not a folder" in captured.err
    assert "fitted" not in captured.out and files_under(tmp_path) == {"a-file"}


@pytest.mark.parametrize(
    "argv, option",
    [
        (["evaluate", "DATA", *SMALL, "--json", "BLOCK/r.json"], "--json"),
        (["evaluate", "DATA", *SMALL, "--save-model", "BLOCK/m.pt"], "--save-model"),
        (["experiment", "DATA", *SMALL, "--classes", "Spot,Scratch", "--out", "BLOCK/x"], "--out"),
        (["experiment", "DATA", *SMALL, "--classes", "Spot,Scratch", "--out", "BLOCK"], "--out"),
        (["tune", "DATA", "--quiet", "--json", "BLOCK/t.json"], "--json"),
        (["demo", "BLOCK/demo"], "FOLDER"),
        (["project", "new", "BLOCK/p", "DATA", "--quiet"], "FOLDER"),
    ],
)
def test_unwritable_outputs_are_refused_up_front(data, tmp_path, capsys, argv, option):
    blocker = tmp_path / "BLOCK"
    blocker.write_text("")
    argv = [str(data) if a == "DATA" else a.replace("BLOCK", str(blocker)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"afps: error: argument {option}: " in err and "Traceback" not in err
    assert files_under(tmp_path) == {"BLOCK"}


@pytest.mark.parametrize("device", ["foo", "cpu:x", "meta"])
def test_unknown_devices_are_refused_before_reading_the_data(data, tmp_path, capsys, device):
    argv = ["fit", str(data), *SMALL, "--out", str(tmp_path / "m.pt"), "--device", device]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "afps: error: argument --device: " in captured.err and "fitted" not in captured.out
    assert files_under(tmp_path) == set()


def test_predict_csv_that_is_a_folder_is_refused_even_with_overwrite(
    data, fitted, tmp_path, capsys
):
    model, _, code = fitted
    assert code == 0
    folder = tmp_path / "predictions.csv"
    folder.mkdir()
    argv = ["predict", str(data / "Spot"), "--padim", str(model), "--csv", str(folder)]
    assert main(argv + ["--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"afps: error: argument --csv: {folder} is a folder, not a file." in err
    assert files_under(tmp_path) == {"predictions.csv"}


# --- fit --json -----------------------------------------------------------------------------


def test_fit_json_writes_the_result(fitted):
    model, out, code = fitted
    assert code == 0 and model.is_file()
    result = json.loads(out.read_text())
    assert result["n_images"] > 0 and result["n_skipped"] == len(result["skipped"]) == 0
    assert math.isfinite(result["threshold"]) and result["seconds"] > 0
    assert result["settings"]["input_size"] == [64, 64]
    assert result["model"] == str(model)


# --- predict lists every input it skips ------------------------------------------------------


def test_predict_lists_and_counts_every_skipped_input(data, fitted, tmp_path, capsys):
    model, _, code = fitted
    assert code == 0
    images = tmp_path / "images"
    images.mkdir()
    good = [p for p in sorted((data / "Spot").glob("*.png")) if not p.stem.endswith("_mask")]
    for src in good[:2]:
        (images / src.name).write_bytes(src.read_bytes())
    (images / "loop.png").symlink_to("loop.png")
    (images / "gone.png").symlink_to("nowhere.png")
    (images / "folder.png").mkdir()
    (images / "broken.png").write_bytes(b"not an image at all")
    csv_path, summary = tmp_path / "pred.csv", tmp_path / "pred.json"
    argv = ["predict", str(images), "--padim", str(model), "--csv", str(csv_path)]
    assert main(argv + ["--json", str(summary), "--quiet"]) == 0
    captured = capsys.readouterr()
    for name, reason in (
        ("loop.png", "symbolic link loop"),
        ("gone.png", "dangling symbolic link"),
        ("folder.png", "a folder, not an image file"),
        ("broken.png", ""),
    ):
        assert f"skipped {name}: {reason}" in captured.err, captured.err
    result = json.loads(summary.read_text())
    assert result["n_skipped"] == 4 and len(result["skipped"]) == 4
    assert {s["image"] for s in result["skipped"]} == {
        "loop.png",
        "gone.png",
        "folder.png",
        "broken.png",
    }
    assert result["n_scored"] == len(good[:2]) == len(csv_path.read_text().splitlines()) - 1
    assert f"{result['n_scored']} images scored" in captured.out and "4 skipped" in captured.out


def test_predict_with_only_unusable_inputs_says_why(fitted, tmp_path, capsys):
    model, _, _ = fitted
    images = tmp_path / "images"
    images.mkdir()
    (images / "gone.png").symlink_to("nowhere.png")
    assert (
        main(["predict", str(images), "--padim", str(model), "--csv", str(tmp_path / "p.csv")]) == 2
    )
    err = capsys.readouterr().err
    assert "skipped gone.png: dangling symbolic link" in err and "1 skipped" in err
    assert not (tmp_path / "p.csv").exists()


# --- property: any value of any option of any command ends cleanly ---------------------------

# Arguments each command needs to parse at all; the drawn options come after them.
BASE_ARGV = {
    "evaluate": ["evaluate", "DATA"],
    "tune": ["tune", "DATA"],
    "experiment": ["experiment", "DATA", "--classes", "A,B"],
    "fit": ["fit", "DATA", "--out", "m.pt"],
    "train": ["train", "DATA", "--padim", "p.pt", "--classes", "A,B", "--out", "c.pt"],
    "predict": ["predict", "images", "--padim", "p.pt"],
    "project new": ["project", "new", "proj", "DATA"],
    "score": ["score", "--project", "proj"],
    "labels": ["labels", "export", "labels.csv", "--project", "proj"],
    "report": ["report", "--project", "proj", "--csv", "r.csv"],
    "demo": ["demo", "demo-out"],
    "watch": ["watch", "proj", "images"],
}


def subparsers(parser) -> dict:
    """'command' (or 'command sub') -> its parser, for every leaf command."""
    out = {}
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            if sub._subparsers is None:
                out[name] = sub
            else:
                out.update({f"{name} {k}": v for k, v in subparsers(sub).items()})
    return out


def options_of(parser) -> list[str]:
    return sorted(
        s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"
    )


def test_the_property_test_knows_every_command():
    assert set(subparsers(build_parser())) == set(BASE_ARGV)


NASTY = [
    "0", "-0", "-1", "-3", "1", "2", "3", "4", "8", "64", "4096", "4097", "100000", "1e999",
    "-1e999", "1e-999", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "", " ", ",", "1,2",
    "0,1", "64x64", "64x0", "x", "0x10", "1_000", "\u0663", "\x00", "a" * 300, "/", ".", "..",
    "-", "--", "auto", "afps", "on", "off", "99999999999999999999999",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@contextlib.contextmanager
def _in_folder(folder: str):
    old = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def parse_and_validate(argv: list[str]):
    """What main() does before it runs a command, with argparse's output swallowed."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        args = build_parser().parse_args(argv)
        validate(args)
    return args


def assert_sane(args) -> None:
    """A command line that got through holds no nan, inf or negative number."""
    for key, value in vars(args).items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, float):
                assert math.isfinite(v) and v >= 0, (key, v)
            elif isinstance(v, int) and not isinstance(v, bool):
                assert v >= 0, (key, v)


@pytest.mark.parametrize("command", sorted(BASE_ARGV))
def test_any_option_value_ends_in_a_clean_error_or_a_sane_value(command):
    options = options_of(subparsers(build_parser())[command])
    folder = tempfile.mkdtemp(prefix="afps-options-")

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        st.lists(st.tuples(st.sampled_from(options), VALUES, st.booleans()), min_size=1, max_size=3)
    )
    def check(drawn):
        argv = list(BASE_ARGV[command])
        for option, value, joined in drawn:
            argv += [f"{option}={value}"] if joined else [option, value]
        try:
            args = parse_and_validate(argv)
        except SystemExit as exc:
            assert exc.code in (0, 2), argv
        except AfpsError:
            pass
        else:
            assert_sane(args)

    with _in_folder(folder):
        check()
    assert os.listdir(folder) == []  # checking writes nothing
