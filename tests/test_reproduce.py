"""`mburst reproduce`: every file, stages that resume instead of redoing, a report that flags trouble,
figures with labelled axes and readable fonts."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from experiments.training.config import TrainResult
from experiments.training.report import table1, table2, warnings_for, write_report
from experiments.training.stages import StageLog
from neurons.common import MburstError

REPRO = ["reproduce", "--profile", "quick", "--runs", "1", "--epochs", "1", "--n-utterances", "12", "--channels", "4",
         "--embed", "8", "--enhance-utterances", "2", "--spiking-frames", "0"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return dict(os.environ, MBURST_CACHE=str(tmp_path_factory.mktemp("cache")), PYTHONHASHSEED="0",
                OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _mburst(args, env):
    return subprocess.run([sys.executable, "-m", "experiments.cli", *args], env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def repro(tmp_path_factory, env):
    out = tmp_path_factory.mktemp("repro")
    done = _mburst([*REPRO, "--out", str(out)], env)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _stage_runs(out) -> dict:
    return {k: v["runs"] for k, v in json.loads((out / "stages.json").read_text()).items()}


def test_reproduce_writes_every_file(repro):
    for name in ("table1.md", "table1.csv", "table2.md", "table2.csv", "fig2_masks.png", "fig3_firing.png",
                 "metrics.json", "report.md", "config.json", "enhancement/enhancement.md", "stages.json",
                 "by_noise.json", "vision.json"):
        assert (repro / name).stat().st_size > 0, name
    report = (repro / "report.md").read_text()
    assert "Table I" in report and "Table II" in report and "STOI" in report
    assert "Real wall time" in report and "CPU time" in report
    assert "Does vision help where audio is ambiguous?" in report and "Multimodal − Unimodal STOI" in report
    metrics = json.loads((repro / "metrics.json").read_text())
    assert set(metrics["test_f1"]) == {"unimodal", "multimodal", "mburst"}
    runs = _stage_runs(repro)
    assert set(runs) >= {"training", "tables", "noise", "vision", "enhancement", "report"} and set(runs.values()) == {1}, runs
    from experiments.training.checkpoints import read_checkpoint

    assert metrics["settings"]["beta"] == 0.1  # the quick profile's burst slope reaches the model
    assert read_checkpoint(repro / "runs" / "run0" / "mburst" / "checkpoint.pt")["model_config"]["beta"] == 0.1


def test_rerun_runs_no_stage_twice_and_force_redoes_one(repro, env):
    kept = {name: (repro / name).stat().st_mtime_ns for name in ("report.md", "config.json", "fig2_masks.png",
                                                                 "enhancement/enhancement.md")}
    first = _stage_runs(repro)
    done = _mburst([*REPRO, "--out", str(repro)], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _stage_runs(repro) == first
    assert {name: (repro / name).stat().st_mtime_ns for name in kept} == kept
    done = _mburst([*REPRO, "--out", str(repro), "--force", "tables"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _stage_runs(repro) == dict(first, tables=2)
    assert (repro / "fig2_masks.png").stat().st_mtime_ns > kept["fig2_masks.png"]


def test_a_changed_stage_setting_reruns_that_stage_only(tmp_path):
    log = StageLog(tmp_path)
    calls = []

    def work():
        calls.append(1)
        (tmp_path / "x.txt").write_text("x")
        return "section", ["x.txt"]

    assert log.run("tables", {"a": 1}, work).section == "section"
    log.run("tables", {"a": 1}, work)
    assert len(calls) == 1
    assert StageLog(tmp_path).run("tables", {"a": 1}, work).runs == 1  # read back from stages.json
    StageLog(tmp_path).run("tables", {"a": 2}, work)
    assert len(calls) == 2
    (tmp_path / "x.txt").unlink()  # a missing output is redone
    assert StageLog(tmp_path).run("tables", {"a": 2}, work).runs == 3
    with pytest.raises(MburstError, match="--force: unknown stage"):
        StageLog(tmp_path, force=["tabels"])


def _fake_results(angle_conv1: float, positive: float = 0.1) -> dict:
    def one(model):
        rep = {"f1": 0.5, "accuracy": 90.0, "positive_fraction": positive}
        epoch = {s: {"active_fraction": {"overall": 0.5}, "mean_event_rate": {"overall": 0.2}} for s in ("train", "test")}
        if model == "mburst":
            epoch["angles_deg"] = {"audio_conv1": angle_conv1, "out": 5.0}
        return [TrainResult(model=model, final={"train": rep, "test": rep}, history=[epoch, epoch], pos_weight=2.0,
                            split_sizes={"train": 8, "test": 2})]

    return {m: one(m) for m in ("unimodal", "multimodal", "mburst")}


@pytest.mark.parametrize("angle, warned", [(103.5, True), (29.0, False)])
def test_report_warns_when_an_update_angle_exceeds_90_degrees(tmp_path, angle, warned):
    results = _fake_results(angle)
    corpus = SimpleNamespace(meta={"source": "synthetic", "snrs_db": [0.0], "lc_db": 5.0}, cleans=[0] * 3,
                             utterances=[0] * 3)
    write_report(tmp_path, "quick", {"beta": 1.0}, corpus, results, table1(results), table2(results),
                 table2(results)[2], {"wall_s": 60.0, "cpu_s": 100.0}, [], note="test", fig2_frames=150)
    text = (tmp_path / "report.md").read_text()
    assert ("update angle above 90°" in text) is warned
    assert ("audio_conv1 (104°)" in text) is warned
    assert "Real wall time 1.0 min" in text and "CPU time 1.7 min" in text


def test_report_warns_on_an_empty_mask_and_a_short_figure():
    lines = warnings_for(_fake_results(10.0, positive=0.0), {}, fig2_frames=40)
    assert any("no positive (speech) unit in the test, train mask" in line for line in lines)
    assert any("Figure 2 shows only 40 frames" in line for line in lines)
    assert warnings_for(_fake_results(10.0), {"x": [10.0]}, fig2_frames=150) == []


def _figure_problems(fig) -> list[str]:
    problems = []
    for ax in fig.axes:
        is_colorbar = hasattr(ax, "_colorbar") or ax.get_label() == "<colorbar>"
        if is_colorbar:
            if not (ax.get_ylabel() or ax.get_xlabel()):
                problems.append("colour bar without a label")
            continue
        xlabel = any(a.get_xlabel() for a in ax.get_shared_x_axes().get_siblings(ax))  # shared x: labelled once
        if not xlabel or not ax.get_ylabel():
            problems.append(f"axes '{ax.get_title()}' without x or y label")
        if not ax.get_title():
            problems.append("axes without a title")
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
        legend = ax.get_legend()
        if legend is not None:
            texts += legend.get_texts()
        problems += [f"'{t.get_text()}' at {t.get_fontsize()} pt" for t in texts if t.get_text() and t.get_fontsize() < 9]
    return problems


def test_every_reproduce_figure_has_labelled_axes_and_readable_fonts(repro, env, monkeypatch):
    from experiments.data.corpus import load_corpus
    from experiments.training import report

    checked = []

    def check(fig, path, **kwargs):
        checked.append((path.name, _figure_problems(fig)))
        return path

    monkeypatch.setattr(report, "atomic_savefig", check)
    results = {m: [TrainResult.load(repro / "runs" / "run0" / m / "metrics.json")] for m in report.ORDER}
    cache = next(Path(env["MBURST_CACHE"]).glob("*/meta.json")).parent
    assert report.fig2_masks(load_corpus(cache), results, repro) > 0
    report.fig3_firing(results, repro)
    assert checked == [("fig2_masks.png", []), ("fig3_firing.png", [])]
    # the checker can fail
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert _figure_problems(fig)
    plt.close(fig)
