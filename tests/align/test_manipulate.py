"""Manipulation: scoring definitions, pair parsing, generation into a tagged library."""

import pandas as pd
import pytest

from perceptlab.align.finetune import FinetuneRecipe, finetune_group, finetune_individual
from perceptlab.align.manipulate import (
    ManipulationPlan,
    generate_manipulation,
    manipulation_stimuli,
    parse_pairs,
    resolve_individual,
    score_manipulation,
)
from perceptlab.align.store import save_model
from perceptlab.data.library import StimulusLibrary
from perceptlab.engine.filters import FilterSettings
from perceptlab.engine.registry import Registry
from perceptlab.engine.sampler import SamplerSettings
from perceptlab.errors import PerceptLabError

from .conftest import run_gen


def test_score_definitions():
    stimuli = pd.DataFrame(
        {
            "stimulus_id": ["s1", "s2", "s3", "s4", "g1", "g2"],
            "class_a": [3] * 6,
            "class_b": [5] * 6,
            "arm": ["indiv"] * 4 + ["group"] * 2,
        }
    )
    r1 = {"s1": 3, "s2": 3, "s3": 5, "s4": 3, "g1": 5, "g2": 3}  # p1
    r2 = {"s1": 5, "s2": 3, "s3": 3, "s4": 5, "g1": 3, "g2": 5}  # p2
    responses = pd.DataFrame(
        [{"participant": "A", "stimulus": k, "response": v} for k, v in r1.items()]
        + [{"participant": "B", "stimulus": k, "response": v} for k, v in r2.items() if k != "s4"]
    )
    scores = score_manipulation(stimuli, responses, "A", "B")
    ind, grp = scores["arms"]["indiv"], scores["arms"]["group"]
    assert scores["without_both_responses"] == 1  # s4: no response from B
    assert ind["n"] == 3 and ind["success_rate"] == pytest.approx(1 / 3)  # s1
    assert ind["reverse_rate"] == pytest.approx(1 / 3)  # s3
    assert ind["directional_ratio"] == pytest.approx(0.5)
    assert ind["disagreement_rate"] == pytest.approx(2 / 3)
    assert grp["success_rate"] == pytest.approx(0.5) and grp["directional_ratio"] == pytest.approx(0.5)
    assert scores["comparison"]["success_rate_gain"] == pytest.approx(1 / 3 - 1 / 2)


def test_parse_pairs():
    assert parse_pairs("3-5, 4-9") == [(3, 5), (4, 9)]
    for bad in ("3-3", "3", "a-b", "3-12", ""):
        with pytest.raises(PerceptLabError):
            parse_pairs(bad)


def test_generate_two_arms_into_a_tagged_library(builtin_with_prior, align_data, mnist_fake, tmp_path):
    reg = Registry(builtin_with_prior, tmp_path / "models")
    recipe = FinetuneRecipe(epochs=1, batch_size=32, trainable="all")
    _, group = run_gen(finetune_group("tinylr", align_data, mnist_fake, recipe, registry=reg))
    save_model(group, "tinylr-group", reg.user_dir, registry=reg)
    for pid in ("P1", "P2"):
        _, res = run_gen(finetune_individual(group, align_data, pid, mnist_fake, recipe, registry=reg))
        save_model(res, f"tinylr-indiv-{pid}", reg.user_dir, registry=reg)
    assert resolve_individual("P2", reg) == "tinylr-indiv-P2"
    with pytest.raises(PerceptLabError, match="no individual model"):
        resolve_individual("P5", reg)
    sampler = SamplerSettings(steps=2, resample=1, gamma=0.1, grad="x0", batch_size=4, seed=11)
    plan = ManipulationPlan(
        p1="P1",
        p2="P2",
        model1="tinylr-indiv-P1",
        model2="tinylr-indiv-P2",
        pairs=[(1, 7)],
        per_pair=2,
        group="tinylr-group",
        sampler=sampler,
        filters=FilterSettings(min_judge=None),
        run="t1",
    )
    lib = StimulusLibrary.create(tmp_path / "lib")
    try:
        records, made = run_gen(generate_manipulation(lib, plan, registry=reg))
        assert {r.get("arm") for r in records} == {"indiv", "group"}
        assert sorted(made["arm"]) == ["group", "group", "indiv", "indiv"]
        back = manipulation_stimuli(lib, "P1", "P2", run="t1")
        assert sorted(back["stimulus_id"]) == sorted(made["stimulus_id"])
        rec = lib.get(made.loc[made["arm"] == "indiv", "stimulus_id"].iloc[0])
        assert (
            rec.mode == "manipulation" and rec.classifier == "tinylr-indiv-P1" and rec.classifier2 == "tinylr-indiv-P2"
        )
        assert {"p1:P1", "p2:P2", "arm:indiv", "run:t1"} <= set(rec.tags)
        assert rec.settings["guidance_mode"] == "controversial"
        ctrl = lib.get(made.loc[made["arm"] == "group", "stimulus_id"].iloc[0])
        assert ctrl.classifier == "tinylr-group" and ctrl.settings["guidance_mode"] == "uncertainty"
        assert manipulation_stimuli(lib, "P2", "P1").empty
    finally:
        lib.close()
    with pytest.raises(PerceptLabError, match="same person"):
        ManipulationPlan(p1="P1", p2="P1", model1="a", model2="b", pairs=[(1, 7)]).validate()


def test_plan_round_trip_and_cli_scoring(tmp_path, capsys):
    from perceptlab.align.manipulate import tags_for
    from perceptlab.cli import main
    from perceptlab.data.library import Stimulus

    plan = ManipulationPlan(p1="A", p2="B", model1="m1", model2="m2", pairs=[(3, 5)], group="g", run="r1").validate()
    assert ManipulationPlan.from_dict(plan.to_dict()).to_dict() == plan.to_dict()
    lib = StimulusLibrary.create(tmp_path / "lib")
    recs = [
        Stimulus(mode="manipulation", class_a=3, class_b=5, tags=tags_for("A", "B", arm, "r1"))
        for arm in ("indiv", "indiv", "group", "group")
    ]
    import numpy as np

    ids = lib.add(recs, np.zeros((4, 28, 28), np.uint8))
    lib.close()
    rows = [
        ("A", ids[0], 3),
        ("B", ids[0], 5),
        ("A", ids[1], 3),
        ("B", ids[1], 3),
        ("A", ids[2], 5),
        ("B", ids[2], 3),
        ("A", ids[3], 3),
        ("B", ids[3], 3),
    ]
    csv = tmp_path / "resp.csv"
    pd.DataFrame(rows, columns=["participant", "stimulus", "response"]).assign(
        stimulus=lambda d: "images/" + d["stimulus"] + ".png"
    ).to_csv(csv, index=False)
    out = tmp_path / "scores.json"
    assert (
        main(
            [
                "manipulate",
                "--library",
                str(tmp_path / "lib"),
                "--p1",
                "A",
                "--p2",
                "B",
                "--run",
                "r1",
                "--score",
                str(csv),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    import json

    scores = json.loads(out.read_text())
    assert scores["arms"]["indiv"]["success_rate"] == 0.5 and scores["arms"]["group"]["success_rate"] == 0.0
    assert scores["arms"]["group"]["directional_ratio"] == 0.0  # one split, the wrong way round
    assert "indiv - group: success +0.500" in capsys.readouterr().out
