"""Explore tiles and the Curate detail say what the independent observers make of a stimulus."""

from perceptlab._qt.curate.detail import StimulusDetail
from perceptlab._qt.explore.preview import Tile
from perceptlab.data.library import Stimulus

ON_PAIR = [0.0, 0.0, 0.0, 0.5, 0.0, 0.45, 0.0, 0.0, 0.05, 0.0]  # top two: 3 and 5
OFF_PAIR = [0.0, 0.0, 0.0, 0.5, 0.0, 0.05, 0.0, 0.0, 0.45, 0.0]  # top two: 3 and 8


def _record(**extra):
    probs = {"vgg": ON_PAIR, "obs-cnn": ON_PAIR, "obs-resnet": OFF_PAIR, **extra}
    return Stimulus(id="s000001", mode="uncertainty", class_a=3, class_b=5, classifier="vgg", probs=probs,
                    p_a=0.5, p_b=0.45, judge=0.9, passed=True)  # fmt: skip


def test_tile_status_names_each_observers_verdict():
    tile = Tile(index=0, pair=(3, 5), seed=1)
    assert tile.observer_confirms() == {} and tile.observer_text() == ""
    tile.record, tile.final, tile.passed = _record(), True, True
    assert tile.observer_confirms() == {"obs-cnn": True, "obs-resnet": False}
    assert tile.status_text() == "accepted; independent observers: obs-cnn confirms, obs-resnet does not"


def test_tile_without_observer_scores_says_only_the_verdict():
    tile = Tile(index=0, pair=(3, 5), seed=1)
    tile.record = Stimulus(mode="uncertainty", class_a=3, class_b=5, probs={"vgg": ON_PAIR}, passed=True)
    tile.final, tile.passed = True, True
    assert tile.status_text() == "accepted"


def test_curate_detail_shows_the_observers_beside_the_filter_verdict(qtbot):
    detail = StimulusDetail()
    qtbot.addWidget(detail)
    detail.show_record(_record())
    text = detail.title.text()
    assert "filter: passed" in text and "obs-cnn confirms, obs-resnet does not" in text
    headers = [detail.probs.horizontalHeaderItem(c).text() for c in range(detail.probs.columnCount())]
    assert headers == ["vgg", "obs-cnn", "obs-resnet"]
