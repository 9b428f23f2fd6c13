import json

import pytest

from perceptlab.errors import PerceptLabError
from perceptlab.experiment.design import (
    FORMAT, Design, DesignTrial, load_design, presentation_order, save_design, validate,
)


def _design(**kw):
    trials = [DesignTrial(id=f"t{i}", stimulus=f"s{i}", block=i // 3, true_label=str(i % 3)) for i in range(6)]
    return Design(classes=["0", "1", "2"], trials=trials, **kw)


def test_round_trip_and_order_is_seeded(tmp_path):
    d = _design(order_seed=7)
    path = save_design(d, tmp_path / "d.json")
    back = load_design(path)
    assert back.to_dict() == d.to_dict()
    assert json.loads(path.read_text())["format"] == FORMAT
    first = [t.id for t in presentation_order(back)]
    assert first == [t.id for t in presentation_order(load_design(path))]
    assert sorted(first) == sorted(t.id for t in d.trials)
    other = [t.id for t in presentation_order(_design(order_seed=8))]
    assert other != first or len(first) < 3


def test_within_block_keeps_blocks_and_puts_train_before_test():
    d = _design(shuffle="within_block", order_seed=3)
    d.trials[0].phase, d.trials[1].phase = "test", "train"
    order = presentation_order(d)
    assert [t.block for t in order] == sorted(t.block for t in order)
    block0 = [t.phase for t in order if t.block == 0]
    assert block0.index("train") < block0.index("test")


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: setattr(d.trials[1], "id", "t0"), "used twice"),
    (lambda d: setattr(d.trials[2], "kind", "rating"), "kind"),
    (lambda d: setattr(d.trials[2], "true_label", "9"), "not a class"),
    (lambda d: d.trials.append(DesignTrial(id="c", stimulus="c", is_catch=True)), "catch"),
    (lambda d: d.trials.append(DesignTrial(id="p", stimulus="p", kind="pick", options={"images": ["a.png"]})), "pick"),
    (lambda d: d.trials.append(DesignTrial(id="s", stimulus="s", kind="slider",
                                           options={"class_a": "1", "class_b": "2", "lambda": 1.5})), "lambda"),
    (lambda d: d.timing.update(stimulus_ms=-1), "stimulus_ms"),
])
def test_validate_names_the_trial_and_problem(mutate, needle):
    d = _design()
    mutate(d)
    with pytest.raises(PerceptLabError, match=needle):
        validate(d)


def test_load_reports_json_line_and_missing_images(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "perceptlab-design/1",\n "classes": [}')
    with pytest.raises(PerceptLabError, match="line 2"):
        load_design(bad)
    d = _design()
    d.trials[0].image = "images/missing.png"
    path = tmp_path / "d.json"
    path.write_text(json.dumps(d.to_dict()))
    with pytest.raises(PerceptLabError, match="missing"):
        load_design(path)
