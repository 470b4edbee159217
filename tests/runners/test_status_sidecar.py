"""``status`` at scale (issue 15): the trial list comes from the small ``trial_ids.json`` sidecar instead of parsing
``sweep.json``, the store listing builds no per-trial Path, ``--json`` is written by a fast encoder. What status
reports must not change: these tests compare the fast path with ``sweep.json`` read the old way (configs, labels,
log paths), with the sidecar absent, stale or forged, and ``--json`` with ``json.dump(..., indent=1)``."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys

import pytest

from robustsweep.config.spec import spec_from_dict
from robustsweep.config.trial import trial_label
from robustsweep.runners.slurm import records as jobs_mod
from robustsweep.runners.slurm.records import SlurmJob as JobRecord
from robustsweep.runners.slurm.records import append_record
from robustsweep.store import parquet as store
from robustsweep.store.markers import marker_path, record_retry
from robustsweep.store.parquet import trial_log_path, write_trial
from robustsweep.sweep import folder as folder_mod
from robustsweep.sweep.folder import TRIAL_LIST_FILE, load_sweep, load_trial_list, prepare_sweep
from robustsweep.sweep.status import SweepStatus, TrialState, print_json, print_status, sweep_status

ERROR = 'ValueError: "NaN" loss — épreuve\n\tat step 3 \x01'  # quotes, non-ASCII, newline, tab, control char


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """Six trials, one of each kind: done (retried once, with a log), failed (with a log), pending, interrupted
    (its SLURM job was cancelled), done, pending in an array job."""
    doc = {"name": "sc", "dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": 8},
           "train": {"epochs": 1}, "eval": {"n_eval": 10}, "attacks": [{"name": "fgsm", "eps": [0.1]}],
           "search": {"seed": {"grid": [0, 1, 2, 3, 4, 5]}}}
    sw = prepare_sweep(spec_from_dict(doc), tmp_path / "results")
    t = sw.trials

    def write(trial, status, error=None):
        write_trial([{"sweep": sw.name, "trial_id": trial["trial_id"], "config_hash": trial["config_hash"],
                      "seed": trial["seed"], "status": status, "error": error}], sw.results, sw.name, trial["trial_id"])

    write(t[0], "ok")
    write(t[1], "failed", ERROR)
    write(t[4], "ok")
    (sw.dir / "logs").mkdir()
    for trial in (t[0], t[1]):
        trial_log_path(sw.results, sw.name, trial["trial_id"]).write_text("log\n")
    record_retry(sw.results, sw.name, t[0]["trial_id"], "node lost")
    m = marker_path(sw.results, sw.name, t[3]["trial_id"])
    m.parent.mkdir(parents=True, exist_ok=True)
    m.write_text(json.dumps({"trial_id": t[3]["trial_id"], "host": "n1", "pid": 1, "slurm_job": "49"}))
    append_record(sw.dir, JobRecord("49", "ray", sw.name, str(sw.dir / "slurm/logs/%j"), [x["trial_id"] for x in t]))
    append_record(sw.dir, JobRecord("60", "array", sw.name, str(sw.dir / "slurm/logs/%j"),
                                    [t[4]["trial_id"], t[5]["trial_id"]], command="resume"))
    monkeypatch.setattr(jobs_mod, "query_states", lambda ids, timeout=20.0: {
        "49": ("CANCELLED", "vm"), "60_0": ("COMPLETED", "vm"), "60_1": ("FAILED", "vm")})
    return sw


def _outputs(sw) -> tuple[str, str, SweepStatus]:
    st = sweep_status(sw.results, sw.name)
    text, js = io.StringIO(), io.StringIO()
    print_status(st, text, results=str(sw.results))
    print_json(st, js)
    return text.getvalue(), js.getvalue(), st


def test_status_reports_what_sweep_json_says(sweep):
    """Ids in the sweep's order, labels of the configs, log paths and job logs as the old path built them."""
    st = sweep_status(sweep.results, sweep.name)
    cfgs = load_sweep(sweep.results, sweep.name).trials
    assert [(x.trial_id, x.label) for x in st.trials] == [(c["trial_id"], trial_label(c)) for c in cfgs]
    t = {x.trial_id: x for x in st.trials}
    ids = [c["trial_id"] for c in cfgs]
    assert [t[i].state for i in ids] == ["done", "failed", "pending", "failed", "done", "pending"]
    assert t[ids[1]].error == ERROR and "CANCELLED" in t[ids[3]].error
    assert t[ids[0]].retry_text == "retried 1×: node lost"
    assert [t[i].log for i in ids] == [str(sweep.log_path(i)) if i in ids[:2] else None for i in ids]
    rec49, rec60 = jobs_mod.read_records(sweep.dir)
    assert t[ids[2]].job == "49" and t[ids[2]].job_log == str(rec49.log_paths("49")[0])
    assert t[ids[5]].job == "60_1" and t[ids[5]].job_log == str(rec60.log_paths("60_1")[0])
    assert t[ids[4]].job_log == str(rec60.log_paths("60_0")[0])


def test_sidecar_absent_stale_or_forged_gives_the_same_output(sweep):
    side = sweep.dir / TRIAL_LIST_FILE
    assert side.exists()  # written by prepare_sweep
    reference = _outputs(sweep)[:2]
    side.unlink()  # a sweep made before the sidecar existed: sweep.json is read, the sidecar written again
    assert _outputs(sweep)[:2] == reference and side.exists()
    doc = json.loads(side.read_text())
    doc["labels"] = ["forged"] * len(doc["labels"])
    doc["sweep_json_sha1"] = "0" * 40  # made from another sweep.json: not trusted
    side.write_text(json.dumps(doc))
    assert _outputs(sweep)[:2] == reference
    assert json.loads(side.read_text())["labels"] != doc["labels"]  # rewritten from sweep.json
    side.write_text("{not json")
    assert _outputs(sweep)[:2] == reference
    good = json.loads(side.read_text())
    side.write_text(json.dumps({**good, "trial_ids": ["../../x"] + good["trial_ids"][1:]}))  # same digest, bad id
    assert _outputs(sweep)[:2] == reference


def test_status_with_a_valid_sidecar_never_parses_sweep_json(sweep, monkeypatch):
    reference = _outputs(sweep)[:2]

    def no_parse(*a, **k):
        raise AssertionError("status parsed sweep.json although its sidecar matches")

    monkeypatch.setattr(folder_mod, "_load_sweep", no_parse)
    assert _outputs(sweep)[:2] == reference


def test_a_sidecar_is_not_trusted_once_the_sweep_grows(sweep):
    _outputs(sweep)
    path = sweep.dir / "sweep.json"
    doc = json.loads(path.read_text())
    new = {**doc["trials"][2], "seed": 99, "trial_id": "feedfacecafe0099"}
    doc["trials"].append(new)  # the sweep grew; its sidecar still lists six trials
    path.write_text(json.dumps(doc, indent=1, sort_keys=True))
    text, _, st = _outputs(sweep)
    assert [x.trial_id for x in st.trials][-1] == "feedfacecafe0099" and st.trials[-1].state == "pending"
    assert st.trials[-1].label == trial_label(new) and "7 total" in text and "3 pending" in text
    assert load_trial_list(sweep.results, sweep.name).trial_ids[-1] == "feedfacecafe0099"


def test_bad_sweep_json_still_refused_with_a_sidecar(sweep):
    """The sidecar does not hide a damaged or hostile sweep.json: its digest no longer matches, so the checks of
    ``load_sweep`` run and refuse it as before."""
    from robustsweep.errors import UsageError

    path = sweep.dir / "sweep.json"
    doc = json.loads(path.read_text())
    doc["trials"][0]["trial_id"] = "../../../x"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="not a valid sweep name"):
        sweep_status(sweep.results, sweep.name)
    path.write_text("{damaged")
    with pytest.raises(UsageError, match="is not valid JSON"):
        sweep_status(sweep.results, sweep.name)


def test_json_output_is_json_dump_byte_for_byte(sweep):
    _, js, st = _outputs(sweep)
    assert st.to_dict() == {**dataclasses.asdict(st), "counts": st.to_dict()["counts"]}
    assert js == json.dumps(st.to_dict(), indent=1) + "\n"
    odd = SweepStatus("s", "/d", [], [TrialState("a", "failed", "x", error=ERROR + "\U0001f600\\", retries=3),
                                      TrialState("b", "pending", "")])
    buf = io.StringIO()
    print_json(odd, buf)
    assert buf.getvalue() == json.dumps(odd.to_dict(), indent=1) + "\n"
    buf = io.StringIO()
    print_json(SweepStatus("empty", "/d"), buf)
    assert buf.getvalue() == json.dumps(SweepStatus("empty", "/d").to_dict(), indent=1) + "\n"


def test_status_command_imports_neither_pydantic_nor_arrow(sweep):
    """With its sidecar, ``robustsweep status`` needs no spec and no table: what it cost in imports at scale."""
    code = ("import sys; from robustsweep.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('pydantic', 'robustsweep.config.spec', 'polars', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, "status", sweep.name, "--results", str(sweep.results)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]" and "trials: 6 total" in out.stdout


def test_index_lookup_with_dotted_trial_ids_and_stale_entries(tmp_path, monkeypatch):
    """Entries are matched on ``<trial_id>.<inode>``: ids with dots, an entry left by an older file of the trial
    and an unrelated file in index/ change nothing; no Parquet file is opened."""
    import pyarrow.parquet as pq

    row = {"sweep": "s", "status": "ok", "seed": 0, "attack": "fgsm", "value": 0.1}
    for tid in ("a", "a.1", "a.1.2"):
        write_trial([{**row, "trial_id": tid}], tmp_path, "s", tid)
    write_trial([{**row, "trial_id": "b", "status": "failed", "error": "E"}], tmp_path, "s", "b")
    idx = tmp_path / "s" / store.INDEX_DIR
    ino = os.stat(store.trial_path(tmp_path, "s", "a")).st_ino
    (idx / f"a.{ino + 1}.0.failed").write_text("stale")  # another inode: an older file of the trial
    (idx / "notes.txt").write_text("")

    def no_parquet(*a, **k):
        raise AssertionError("status opened a Parquet file")

    monkeypatch.setattr(pq, "ParquetFile", no_parquet)
    assert store.trial_status(tmp_path, "s") == {"a": {"status": "ok", "error": None},
                                                  "a.1": {"status": "ok", "error": None},
                                                  "a.1.2": {"status": "ok", "error": None},
                                                  "b": {"status": "failed", "error": "E"}}
    snap = store.snapshot(tmp_path, "s")
    assert list(snap.files) == ["a", "a.1", "a.1.2", "b"] and "a.1" in snap.files and "c" not in snap.files
    assert snap.files["a.1"] == tmp_path / "s" / "trials" / "a.1.parquet" and len(snap.files) == 4
    with pytest.raises(KeyError):
        snap.files["c"]
    assert snap.files.pop("b").name == "b.parquet" and "b" not in snap.files
