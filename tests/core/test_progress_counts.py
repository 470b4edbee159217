"""The progress lines count what the command's header announced, including trials that finished between the header
and the start of Tune (workers of a SIGKILLed driver can outlive it by a moment: the chaos test caught
"resuming 6 of 6" next to ``[x/4]``)."""
from __future__ import annotations

from types import SimpleNamespace

from robustsweep.runners import tune_callbacks


def _trial(tid: str) -> SimpleNamespace:
    return SimpleNamespace(config={"trial": {"trial_id": tid, "model": {"name": "mlp"}, "seed": 0}},
                           last_result={"clean_accuracy": 0.5})


def test_trials_finished_before_the_run_count_as_done(capsys):
    tune_callbacks.start_run(["a", "b"], 2, already_done=["c"])
    cb = tune_callbacks.progress_callback()
    for tid in ("a", "b"):
        cb.on_trial_start(0, [], _trial(tid))
    cb.on_trial_complete(0, [], _trial("a"))
    cb.on_trial_complete(0, [], _trial("c"))  # not this run's to count: it was counted up front
    cb.on_trial_complete(0, [], _trial("b"))
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("]")[0].strip("[ ") for ln in lines] == ["1/3", "1/3", "2/3", "3/3"]
    assert "done 3" in lines[-1] and "pending 0" in lines[-1]


def test_without_already_done_the_total_is_the_pending_ids(capsys):
    tune_callbacks.start_run(["a"], 4)
    cb = tune_callbacks.progress_callback()
    cb.on_trial_start(0, [], _trial("a"))
    cb.on_trial_complete(0, [], _trial("a"))
    assert capsys.readouterr().out.splitlines()[-1].startswith("[  1/1] done 1")
