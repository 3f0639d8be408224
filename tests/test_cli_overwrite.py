"""`afps predict` refuses to replace its CSV by the one rule (``jobs.refuse_overwrite``) and, like
every command that writes a named file, says that --overwrite replaces it."""

from PIL import Image

from afps_gui.cli import main


def test_predict_refuses_an_existing_csv_and_names_the_option(tmp_path, capsys):
    folder = tmp_path / "parts"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    csv_path = tmp_path / "pred.csv"
    csv_path.write_text("keep me\n")
    argv = ["predict", str(folder), "--padim", str(tmp_path / "none.pt"), "--csv", str(csv_path)]
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{csv_path} already exists" in err and "--overwrite replaces it" in err
    assert csv_path.read_text() == "keep me\n"
