"""`afps labels import` goes through the project's one door into a labels CSV
(``Project.import_labels``): a path under the dataset root is the image it names."""

from afps_gui.cli import main
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.project import Project


def test_labels_import_matches_absolute_paths_under_the_dataset_root(tmp_path, capsys):
    data = make_demo_dataset(tmp_path / "data", n_normal=3, n_per_type=2, size=(32, 32))
    proj = tmp_path / "proj"
    assert main(["project", "new", str(proj), str(data), "--no-tune", "--quiet"]) == 0
    image = data / "Spot" / "spot_000.png"
    labels = tmp_path / "labels.csv"
    labels.write_text(f"image,label\n{image},Scratch\n", encoding="utf-8")
    assert main(["labels", "import", str(labels), "--project", str(proj)]) == 0
    assert "imported 1 labels" in capsys.readouterr().out
    with Project.open(proj) as project:
        assert project.store.labels()["Spot/spot_000.png"] == "Scratch"
