"""Explore: streaming previews, responsiveness, Stop, close mid-run, re-judging, adding to the library."""

from __future__ import annotations

import shutil
import time

import numpy as np
from PySide6.QtCore import QItemSelectionModel, Qt, QTimer

from perceptlab.engine.registry import Registry
from perceptlab.engine.sampler import SamplerSettings


class GapMeter:
    """A 10 ms QTimer; the largest gap between its ticks is how long the event loop was blocked."""

    def __init__(self):
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self):
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return float(np.max(np.diff(self.ticks))) if len(self.ticks) > 1 else float("inf")


def _setup(ex, pairs, per_pair, batch, steps=None, preset="fast"):
    ex.form.matrix.set_pairs(pairs)
    ex.form.apply_preset(preset)
    if steps is not None:
        ex.form.steps.setValue(steps)
    ex.form.per_pair.setValue(per_pair)
    ex.form.batch_size.setValue(batch)
    ex.form.seed.setValue(1)


def test_interactive_preset_streams_previews_without_blocking_and_stops_within_a_step(make_window, qtbot):
    w = make_window()
    ex = w.explore
    c = ex.controller
    _setup(ex, [(4, 9)], per_pair=64, batch=16)
    assert ex.form.settings().preset == "fast"
    qtbot.waitExposed(w)
    qtbot.wait(300)  # the window's first layout and paint are done before we measure
    meter = GapMeter()
    meter.start()
    t_click = time.perf_counter()
    qtbot.mouseClick(ex.generate_button, Qt.MouseButton.LeftButton)
    assert ex.is_running() and not ex.generate_button.isEnabled() and ex.stop_button.isEnabled()
    qtbot.waitUntil(lambda: c.first_preview_at is not None, timeout=10_000)
    first_preview = c.first_preview_at - t_click
    qtbot.waitUntil(lambda: len(c.step_times) >= 8, timeout=20_000)
    tile = c.tiles[0]
    assert tile.image is not None and tile.image.dtype == np.uint8 and len(tile.hist_a) >= 8
    assert np.isfinite(tile.p_a)
    qtbot.waitUntil(lambda: ex.curve_a.getData()[0] is not None and len(ex.curve_a.getData()[0]) > 0)  # redrawn at <= 16 Hz
    qtbot.mouseClick(ex.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not ex.is_running() and c.job.finished_at is not None, timeout=10_000)
    max_gap = meter.stop()
    stop_latency = c.job.finished_at - c.stop_requested_at
    step = (c.step_times[-1] - c.step_times[0]) / (len(c.step_times) - 1)  # mean time per step
    print(f"\nfirst preview {first_preview * 1000:.0f} ms; max event-loop gap {max_gap * 1000:.0f} ms; "
          f"stop latency {stop_latency * 1000:.0f} ms (one step: {step * 1000:.0f} ms)")
    assert first_preview < 1.5
    assert max_gap < 0.1
    assert stop_latency < step + 0.1
    assert ex.progress.format() == "cancelled" and ex.generate_button.isEnabled()
    assert "cancelled" in w.statusBar().currentMessage()
    assert any(t.stopped for t in c.tiles)


def test_closing_the_window_mid_run_exits_cleanly(make_window, qtbot, capfd):
    w = make_window()
    ex = w.explore
    _setup(ex, [(4, 9), (3, 5)], per_pair=32, batch=16)
    assert ex.generate()
    qtbot.waitUntil(lambda: len(ex.controller.step_times) >= 2, timeout=10_000)
    job = ex.controller.job
    w.close()
    assert not job.is_running() or job.wait(0)
    qtbot.wait(100)
    err = capfd.readouterr().err
    assert "RuntimeError" not in err and "C++ object" not in err and "Traceback" not in err


def test_rejudge_without_resampling_and_add_to_library(make_window, qtbot, tmp_path, dialogs, fake_mnist):
    w = make_window()
    ex = w.explore
    c = ex.controller
    _setup(ex, [(4, 9), (1, 7)], per_pair=3, batch=4, steps=3)
    ex.add_to_library(selected=False)  # no library yet: a plain message, nothing else
    assert "no library is open" in dialogs.texts()
    # a reference image from MNIST for the pixel constraint
    from perceptlab._qt.explore.reference import ReferencePicker

    qtbot.waitUntil(lambda: w.session.mnist is not None)
    picker = ReferencePicker(w.session, ex)
    qtbot.addWidget(picker)
    picker.list.setCurrentRow(3)
    ex.set_reference(picker.chosen())
    assert ex.reference.label == int(fake_mnist.labels[3])
    assert ex.generate()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=30_000)
    assert ex.progress.format() == "done"
    assert all(t.final for t in c.tiles) and len(c.tiles) == 6
    staged = len(c.staging())
    ex.filter_form.agree.setValue(0)
    ex.filter_form.strokes.setChecked(False)
    ex.filter_form.use_judge.setChecked(False)
    ex.filter_form.top_two.setChecked(False)
    ex.filter_form.min_prob.setValue(0.0)
    assert all(t.passed for t in c.tiles if t.record is not None)
    ex.filter_form.min_prob.setValue(0.99)
    assert not any(t.passed for t in c.tiles)
    assert "p(" in c.tiles[0].reason
    assert len(c.staging()) == staged  # re-judged, not re-sampled
    ex.filter_form.min_prob.setValue(0.0)

    assert w.open_library(tmp_path / "lib", create=True)
    ids = ex.add_to_library(selected=False)
    assert len(ids) == 6 and all(t.added_id for t in c.tiles)
    lib = w.session.library
    rec = lib.get(ids[0])
    assert rec.settings["filter"]["min_prob"] == 0.0 and rec.settings["reference"]["label"] == ex.reference.label
    assert rec.passed is True and set(rec.probs) == {"vgg", "mlp", "cornet", "vit"} and rec.judge is not None
    assert w.curate.proxy.rowCount() == 6
    assert ex.add_to_library(selected=False) == []  # nothing twice
    assert "6 stimuli" in w.library_label.text()


def test_regenerate_rejects_samples_rejected_tiles_again_in_place(make_window, qtbot):
    w = make_window()
    ex = w.explore
    c = ex.controller
    _setup(ex, [(4, 9)], per_pair=3, batch=2, steps=2, preset="draft")
    ex.filter_form.min_prob.setValue(0.99)  # no image can pass: every target uses all its rounds
    assert not ex.form.max_rounds.isEnabled()
    ex.form.regenerate.setChecked(True)
    ex.form.max_rounds.setValue(3)
    assert ex.form.rounds() == 3
    assert ex.generate()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=30_000)
    assert len(c.tiles) == 3 and c.summary.rounds == 3 and c.summary.unfilled == 3
    assert all(t.final and not t.passed and t.attempt == 3 for t in c.tiles)
    assert "attempt 3" in c.tiles[0].status_text()
    seeds = [t.seed for t in c.tiles]
    assert len(set(seeds)) == 3 and min(seeds) >= 1 + 6  # the third attempts (seeds 1..6 were rounds 1, 2)
    assert all(len(t.hist_a) == len(t.steps) and 0 < len(t.steps) <= 2 for t in c.tiles)  # history restarted
    assert len(c.staging()) == 9  # every attempt is kept in staging
    assert all(t.record.seed == t.seed for t in c.tiles)
    assert "over 3 rounds (3 of 3 still rejected)" in w.statusBar().currentMessage()
    ex.filter_form.min_prob.setValue(0.0)
    ex.filter_form.top_two.setChecked(False)
    ex.filter_form.use_judge.setChecked(False)
    assert all(t.passed for t in c.tiles)  # the last attempts are what is re-judged
    state = ex.state()
    ex.form.regenerate.setChecked(False)
    ex.restore_state(state)
    assert ex.form.regenerate.isChecked() and ex.form.rounds() == 3


def test_percentile_filter_thresholds_come_from_mnist_then_the_run_starts(make_window, qtbot):
    from perceptlab.engine.filters import percentile_thresholds
    from perceptlab.engine.registry import predict_probs

    w = make_window()
    ex = w.explore
    c = ex.controller
    _setup(ex, [(3, 5)], per_pair=2, batch=2, steps=2, preset="draft")
    ff = ex.filter_form
    ff.use_judge.setChecked(False)
    ff.kind.setCurrentIndex(ff.kind.findData("percentile"))
    assert not ff.min_prob.isEnabled() and ff.percentile.isEnabled() and ff.percentile.value() == 75.0
    qtbot.waitUntil(lambda: w.session.mnist is not None)
    assert ex.generate()
    assert ex.is_running() and not ex.generate_button.isEnabled()  # thresholds first, then the run
    qtbot.waitUntil(lambda: c.summary is not None and not ex.is_running(), timeout=30_000)
    expected = percentile_thresholds(predict_probs("vgg", w.session.mnist.images, w.session.registry), 75.0)
    assert np.allclose(c.filters.thresholds["vgg"], expected) and c.filters.kind == "percentile"
    assert set(c.filters.thresholds) == {"vgg"}
    ff.percentile.setValue(0.0)  # above the smallest MNIST probability: the pair passes
    assert all(t.passed for t in c.tiles)
    ff.percentile.setValue(100.0)  # must beat the largest MNIST probability of each class
    k100 = percentile_thresholds(predict_probs("vgg", w.session.mnist.images, w.session.registry), 100.0)
    for t in c.tiles:
        p = np.asarray(t.record.probs["vgg"])
        assert t.passed == bool(p[3] > k100[3] and p[5] > k100[5])
        assert t.passed or "100th percentile" in t.reason
    assert ex.thresholds.job is None  # q changed: no second pass over MNIST
    w.session.modelsChanged.emit()  # a model may have been replaced under its name: computed again
    ff.percentile.setValue(0.0)
    assert ex.thresholds.job is not None
    qtbot.waitUntil(lambda: ex.thresholds.job is None and all(t.passed for t in c.tiles), timeout=30_000)


def test_add_selected_tiles_only(make_window, qtbot, tmp_path):
    w = make_window()
    ex = w.explore
    _setup(ex, [(2, 7)], per_pair=4, batch=4, steps=2, preset="draft")
    assert w.open_library(tmp_path / "lib", create=True)
    assert ex.generate()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=30_000)
    sel = ex.view.selectionModel()
    sel.clearSelection()
    sel.select(ex.model.index(1), QItemSelectionModel.SelectionFlag.Select)
    sel.select(ex.model.index(3), QItemSelectionModel.SelectionFlag.Select)
    assert ex.add_selected.isEnabled()
    qtbot.mouseClick(ex.add_selected, Qt.MouseButton.LeftButton)
    assert len(w.session.library) == 2
    assert [t.added_id is not None for t in ex.controller.tiles] == [False, True, False, True]


def test_a_missing_model_is_reported_in_plain_words(make_window, qtbot, tiny_weights, tmp_path, dialogs):
    partial = tmp_path / "weights"
    shutil.copytree(tiny_weights, partial)
    for f in partial.glob("dit.*"):
        f.unlink()
    w = make_window(registry=Registry(partial, tmp_path / "none"))
    ex = w.explore
    _setup(ex, [(4, 9)], per_pair=2, batch=2, steps=2)
    assert ex.generate()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=10_000)
    assert ex.progress.format() == "failed"
    assert "unknown prior 'dit'" in dialogs.texts() and dialogs.calls[-1][0] == "warning"
    assert "Generation failed" in w.statusBar().currentMessage()


def test_controversial_mode_uses_ordered_pairs_and_two_classifiers(make_window, qtbot, dialogs):
    w = make_window()
    ex = w.explore
    f = ex.form
    f.mode.setCurrentIndex(f.mode.findData("controversial"))
    assert not f.matrix.symmetric() and f.classifier2.isEnabled()
    f.matrix.set_pairs([])
    qtbot.mouseClick(f.matrix.button(7, 1), Qt.MouseButton.LeftButton)
    assert f.matrix.pairs() == [(7, 1)] and not f.matrix.button(1, 7).isChecked()
    f.classifier2.setCurrentIndex(f.classifier2.findData(f.classifier.currentData()))
    _setup(ex, [(7, 1)], per_pair=2, batch=2, steps=2, preset="draft")
    assert not ex.generate() and "two different classifiers" in dialogs.texts()
    f.classifier.setCurrentIndex(f.classifier.findData("vgg"))
    f.classifier2.setCurrentIndex(f.classifier2.findData("mlp"))
    assert ex.generate()
    qtbot.waitUntil(lambda: not ex.is_running(), timeout=30_000)
    rec = ex.controller.tiles[0].record
    assert rec.mode == "controversial" and rec.classifier2 == "mlp"
    assert rec.p_b == rec.probs["mlp"][1] and rec.p_a == rec.probs["vgg"][7]


def test_form_carries_the_timestep_spacing_of_presets_and_settings(make_window):
    form = make_window().explore.form
    form.apply_preset("paper")
    assert form.settings().spacing == "trailing" and form.settings().preset == "paper"
    form.apply_preset("fast")
    assert form.settings().spacing == "quadratic" and form.settings().preset == "fast"
    form.spacing.setCurrentIndex(form.spacing.findData("trailing"))  # fast's numbers, even spacing: custom
    assert form.settings().preset is None and form.preset.currentData() is None
    custom = form.settings().replace(spacing="quadratic", steps=33)
    form.set_settings(custom)
    assert form.settings().spacing == "quadratic" and form.settings().steps == 33


def test_form_carries_pair_conditioning_co_guides_and_the_reference_loop(make_window):
    form = make_window().explore.form
    form.mode.setCurrentIndex(form.mode.findData("uncertainty"))
    form.apply_preset("fast")
    s = form.settings()
    assert s.preset == "fast" and s.condition == "a" and s.ensemble == ["cornet"]
    assert (s.step_size, s.renoise, s.clamp, s.final_rounds) == ("posterior", "sqrt_beta", "straight_through", False)
    assert form.loop_label.text() == "this project's, with the reference code's step size"
    form.mode.setCurrentIndex(form.mode.findData("controversial"))  # the fast preset co-guides in uncertainty only
    s = form.settings()
    assert s.ensemble == [] and s.condition == "b" and not form.ensemble.isEnabled() and s.preset == "fast"
    form.mode.setCurrentIndex(form.mode.findData("uncertainty"))
    form.apply_preset("reference")
    s = form.settings()
    assert s.preset == "reference" and s.spacing == "leading" and s.condition is None and s.ensemble == []
    assert (s.step_size, s.renoise, s.clamp, s.final_rounds) == ("posterior", "beta", "clip", True)
    assert form.loop_label.text() == "the public reference code's"
    form.ensemble.setText("vgg, mlp")
    form.ensemble.editingFinished.emit()
    assert form.settings().ensemble == ["vgg", "mlp"] and form.settings().preset is None
    form.set_settings(SamplerSettings.from_preset("paper", mode="uncertainty", pairs=[(3, 5)]))
    assert form.settings().preset == "paper" and form.loop_label.text() == "this project's"


def test_presets_set_the_filter_forms_zoo_agreement_and_stroke_check(make_window):
    ex = make_window().explore
    form, ff = ex.form, ex.filter_form
    form.mode.setCurrentIndex(form.mode.findData("uncertainty"))
    form.apply_preset("fast")
    assert (ff.agree.value(), ff.strokes.isChecked()) == (2, True)
    assert (ff.filters().agree, ff.filters().strokes) == (2, True)
    form.mode.setCurrentIndex(form.mode.findData("controversial"))  # the fast preset asks 3 others there
    assert ff.filters().agree == 3
    form.apply_preset("paper")
    assert (ff.filters().agree, ff.filters().strokes) == (0, False) and ff.agree.text() == "off"
    ff.min_prob.setValue(0.3)
    ff.strokes.setChecked(True)
    form.apply_preset("reference")  # thresholds the user set stay; only the preset's filter values change
    assert ff.filters().min_prob == 0.3 and not ff.filters().strokes
