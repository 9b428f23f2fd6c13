"""Cyclic garbage (which may hold Qt objects) is collected in the GUI thread, never in a worker."""

import gc
import threading
import weakref

from perceptlab._qt import gui_gc


class _Cycle:
    def __init__(self):
        self.me = self


def _garbage_in_a_worker(where: list) -> None:
    def work():
        obj = _Cycle()
        weakref.finalize(obj, lambda: where.append(threading.current_thread().name))
        del obj
        for _ in range(50_000):  # far past the generation-0 threshold: the automatic collector would run here
            _Cycle()

    t = threading.Thread(target=work, name="worker")
    t.start()
    t.join()


def test_worker_garbage_is_collected_by_the_gui_thread(qapp):
    assert gui_gc.install() and gui_gc.installed()
    assert not gc.isenabled()
    where: list = []
    _garbage_in_a_worker(where)
    assert where == []  # nothing collected in the worker
    assert gui_gc.collect_now() >= 0
    gc.collect()  # whatever generation the check chose, the cycle goes in this (the GUI) thread
    assert where == [threading.main_thread().name]


def test_hold_defers_collection_until_release(qapp):
    gui_gc.install()
    owner = object()
    gui_gc.hold(owner)
    for _ in range(5_000):
        _Cycle()
    assert gui_gc.collect_now() == -1
    gui_gc.release(owner)
    gui_gc.release(owner)  # idempotent
    assert gui_gc.collect_now() >= 0


def test_full_collections_follow_cpythons_quarter_rule_and_still_free_cycles(qapp):
    gui_gc.install()
    gc.unfreeze()
    gc.collect()
    gc.freeze()  # as after a full collection: the survivors are frozen
    frozen = gc.get_freeze_count()
    assert frozen > 0
    keep = [_Cycle() for _ in range(1_000)]  # new long-lived objects, far fewer than a quarter of the heap
    gc.collect(1)
    where: list = []
    obj = _Cycle()
    weakref.finalize(obj, lambda: where.append("freed"))
    del obj
    while gui_gc.collect_now() != 2:  # until a generation-2 check comes up: a partial one, nothing unfrozen
        for _ in range(800):
            _Cycle()
    assert where == ["freed"] and gc.get_freeze_count() == frozen
    keep += [_Cycle() for _ in range(frozen)]  # now more than a quarter: the next one scans everything
    gc.collect(1)
    while gui_gc.collect_now() != 2:
        for _ in range(800):
            _Cycle()
    assert gc.get_freeze_count() > frozen  # a real full scan, survivors frozen again
    del keep
