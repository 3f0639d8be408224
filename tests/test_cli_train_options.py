"""`afps train` changes only the classifier settings given on its command line: with --project
the project's saved ones (a new project's "auto" included), without it ClassifierConfig's."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from afps_gui.cli import build_parser, main, train_config
from afps_gui.core import pipeline
from afps_gui.core.classifier import ClassifierConfig
from afps_gui.core.demo import make_demo_dataset
from afps_gui.core.padim import PadimConfig
from afps_gui.core.project import Project, ProjectSettings


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_demo_dataset(
        tmp_path_factory.mktemp("data"), n_normal=4, n_per_type=2, size=(32, 32)
    )


def test_train_project_keeps_the_projects_classifier_settings_but_the_options_given(
    data, tmp_path, monkeypatch
):
    saved = ClassifierConfig(strategy="auto", n=10, epochs=3, lr=0.01, seed=7)
    settings = ProjectSettings(
        dataset_root=str(data), padim=PadimConfig(input_size=(32, 32)), classifier=saved
    )
    Project.create(tmp_path / "proj", settings).close()
    seen = []

    def train_project(project, config, **_):
        seen.append(config)
        return SimpleNamespace(metrics={}, skipped=[], changed=[], flops=0)

    monkeypatch.setattr(pipeline, "train_project", train_project)
    proj = str(tmp_path / "proj")
    assert main(["train", "--project", proj, "--quiet"]) == 0
    assert seen[-1] == saved  # "auto" as saved, not the options' old literal "afps", n 100
    assert main(["train", "--project", proj, "--epochs", "5", "--seed", "1", "--quiet"]) == 0
    assert seen[-1] == replace(saved, epochs=5, seed=1)


def test_without_a_project_the_defaults_are_classifier_configs():
    parse = build_parser().parse_args
    assert train_config(parse(["train"])) == ClassifierConfig()
    args = parse(["train", "--strategy", "pooled", "--afps-sd", "0.2", "--batch-size", "8"])
    assert train_config(args) == ClassifierConfig(strategy="pooled", sd=0.2, batch_size=8)
    assert (
        "default 100" in build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    )
