"""Fuzz: random and mutated bytes in the files a project is made of.

Images, the PaDiM model file, project.json and labels.sqlite are overwritten with random bytes,
truncated, or have bytes flipped; then the real `afps` entry point opens the project, fits,
scores and exports labels. Every run must end in success or a clear error (exit 0 or 2, never a
traceback), and the labels that were there before are still there, or the open is refused.
"""

from __future__ import annotations

import random
import shutil

import pytest

from afps_gui.cli import main
from afps_gui.core.demo import make_demo_dataset

N_CASES = 4  # per file kind: each case copies the project and runs the CLI once or twice


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A fitted and scored project on a tiny dataset, with three human labels."""
    root = tmp_path_factory.mktemp("fuzz")
    data = make_demo_dataset(root / "data", n_normal=8, n_per_type=3, size=(48, 48))
    project = root / "proj"
    assert main(["project", "new", str(project), str(data), "--size", "64", "--quiet"]) == 0
    csv = root / "labels.csv"
    csv.write_text(
        "image,label\nSpot/spot_000.png,Scratch\nSpot/spot_001.png,Spot\n"
        "Scratch/scratch_000.png,Scratch\n"
    )
    assert main(["labels", "import", str(csv), "--project", str(project)]) == 0
    assert main(["fit", "--project", str(project), "--quiet"]) == 0
    assert main(["score", "--project", str(project), "--quiet"]) == 0
    return root, data, project


def exported(project, out) -> dict[str, str]:
    """The labels the CLI exports (exit 0), or None when it refuses (exit 2)."""
    code = run(["labels", "export", str(out), "--project", str(project), "--overwrite"])
    if code != 0:
        return None
    lines = out.read_text().splitlines()[1:]
    return dict(line.rsplit(",", 1) for line in lines if line)


def run(argv: list[str]) -> int:
    """The CLI's exit code; any exception that escapes main() is a traceback: a failure."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    assert code in (0, 2), f"afps {' '.join(argv)} exited with {code}"
    return code


def mutate(path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    how = rng.choice(["random", "truncate", "flip", "empty"])
    if how == "random":
        data = bytearray(rng.randbytes(rng.randint(1, 4096)))
    elif how == "truncate" and data:
        data = data[: rng.randint(0, len(data) - 1)]
    elif how == "flip" and data:
        for _ in range(rng.randint(1, 32)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    return how


def copy_of(base, tmp_path):
    _, data, project = base
    data_copy, project_copy = tmp_path / "data", tmp_path / "proj"
    shutil.copytree(data, data_copy)
    shutil.copytree(project, project_copy)
    settings = (project_copy / "project.json").read_text()
    (project_copy / "project.json").write_text(settings.replace(str(data), str(data_copy)))
    return data_copy, project_copy


@pytest.mark.parametrize("case", range(N_CASES))
def test_mutated_images_are_skipped_or_refused(base, tmp_path, case):
    rng = random.Random(case)
    data, project = copy_of(base, tmp_path)
    before = exported(project, tmp_path / "before.csv")
    images = sorted(p for p in data.rglob("*.png") if "mask" not in p.name)
    for path in rng.sample(images, 3):
        mutate(path, rng)
    run(["fit", "--project", str(project), "--quiet"])
    run(["score", "--project", str(project), "--quiet"])
    assert exported(project, tmp_path / "after.csv") == before


@pytest.mark.parametrize("case", range(N_CASES))
def test_mutated_model_file_is_a_clear_error(base, tmp_path, case):
    rng = random.Random(100 + case)
    _, project = copy_of(base, tmp_path)
    before = exported(project, tmp_path / "before.csv")
    mutate(project / "models" / "padim.pt", rng)
    run(["score", "--project", str(project), "--quiet"])
    assert exported(project, tmp_path / "after.csv") == before


@pytest.mark.parametrize("case", range(N_CASES))
def test_mutated_project_json_is_refused_or_read(base, tmp_path, case):
    rng = random.Random(200 + case)
    _, project = copy_of(base, tmp_path)
    before = exported(project, tmp_path / "before.csv")
    mutate(project / "project.json", rng)
    after = exported(project, tmp_path / "after.csv")
    assert after is None or after == before


@pytest.mark.parametrize("case", range(N_CASES))
def test_mutated_label_database_keeps_its_labels_or_is_refused(base, tmp_path, case):
    rng = random.Random(300 + case)
    _, project = copy_of(base, tmp_path)
    before = exported(project, tmp_path / "before.csv")
    assert len(before) == 3
    mutate(project / "labels.sqlite", rng)
    after = exported(project, tmp_path / "after.csv")
    assert after is None or after == before
