"""The ``rbmrec`` command line, run as a subprocess on tiny synthetic files.

Every test calls ``python -m rbmrec ...`` (the console script is the same ``main``) with one
numba thread and a few epochs so the module stays fast on a shared 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FAST = ["--epochs", "3", "--n-hidden", "8", "--threads", "1", "--quiet"]
#: Models written by rbmrec 0.1.0's `rbmrec fit` (three files each, users u0..u24, items
#: m0..m14, fitted on tests/fixtures/legacy/cli_ratings.csv).
LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"
LEGACY_RATING, LEGACY_IRBM = LEGACY / "cli_rating.npz", LEGACY / "cli_irbm.npz"
LEGACY_SIDES = (".ids.json", ".seen.npz")


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this one's, with the rbmrec under test (the one
    this process imported) first on the path, since the child runs in another folder."""
    import rbmrec

    root = str(Path(rbmrec.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""), **extra)


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m rbmrec *args`` with no real data visible; returns the finished process."""
    env = _env()
    env.pop("RBMREC_DATA_DIR", None)
    env["RBMREC_CACHE_DIR"] = str(cwd / "cache")
    env["NUMBA_NUM_THREADS"] = "1"
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, "-m", "rbmrec", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``ratings.csv`` (string user ids, titles) and ``new_user.csv``."""
    path = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    lines = ["user_id,item_id,rating,title"]
    for u in range(60):
        group = u % 2
        for i in rng.choice(20, 10, replace=False):
            item = 100 + 20 * group + int(i)
            lines.append(f"u{u},{item},{int(rng.integers(3, 6))},Movie {item}")
    (path / "ratings.csv").write_text("\n".join(lines) + "\n")
    (path / "new_user.csv").write_text("item,rating\n100,5\n101,4\n999,3\n")
    return path


@pytest.fixture(scope="module")
def rating_model(work: Path) -> Path:
    out = work / "rbm.npz"
    res = run(
        "fit", "--data", "ratings.csv", "--model", "rating-rbm", "--orientation", "user",
        *FAST, "--out", str(out), cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "model written to" in res.stdout
    return out


@pytest.fixture(scope="module")
def implicit_model(work: Path) -> Path:
    out = work / "irbm"  # the suffix is added
    res = run(
        "fit", "--data", "ratings.csv", "--model", "implicit-rbm", *FAST, "--out", str(out),
        cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return work / "irbm.npz"


def test_help_and_version(work: Path) -> None:
    res = run("--help", cwd=work)
    assert res.returncode == 0
    for cmd in ("demo", "fit", "recommend", "evaluate", "benchmark", "datasets"):
        assert cmd in res.stdout
    res = run("--version", cwd=work)
    assert res.returncode == 0 and "rbmrec" in res.stdout


def test_no_command_is_usage_error(work: Path) -> None:
    res = run(cwd=work)
    assert res.returncode == 2
    assert "usage" in res.stdout.lower()


def test_fit_writes_one_bundle_file(rating_model: Path) -> None:
    """`rbmrec fit` writes one file: the model, the raw ids, titles and training ratings."""
    from rbmrec import RatingRBM
    from rbmrec.bundle import ModelBundle

    assert rating_model.is_file()
    assert sorted(p.name for p in rating_model.parent.glob(rating_model.name + "*")) == [
        rating_model.name
    ]
    bundle = ModelBundle.load(rating_model)
    assert isinstance(bundle.model, RatingRBM)
    assert bundle.user_ids.raw[:2].tolist() == ["u0", "u1"]
    assert bundle.n_items == len(bundle.titles) == 40
    assert bundle.item_title(100) == "Movie 100"
    assert bundle.seen.nnz == 600 and bundle.name == "ratings"


def test_recommend_known_user_text(work: Path, rating_model: Path) -> None:
    res = run("recommend", "--model", str(rating_model), "--user", "u3", "-n", "5", cwd=work)
    assert res.returncode == 0, res.stderr
    ranked = [ln for ln in res.stdout.splitlines() if ln.strip()[:2].rstrip(".").isdigit()]
    assert len(ranked) == 5
    assert "Movie" in ranked[0]


def test_recommend_json_excludes_seen(work: Path, implicit_model: Path) -> None:
    import csv

    with open(work / "ratings.csv") as fh:
        seen = {int(r["item_id"]) for r in csv.DictReader(fh) if r["user_id"] == "u4"}
    res = run("recommend", "--model", str(implicit_model), "--user", "u4", "--json", cwd=work)
    assert res.returncode == 0, res.stderr
    recs = json.loads(res.stdout)["recommendations"]
    assert len(recs) == 10
    assert not seen & {r["item_id"] for r in recs}
    assert all(r["title"].startswith("Movie") for r in recs)
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True)
    res = run(
        "recommend", "--model", str(implicit_model), "--user", "u4", "--json", "-n", "40",
        "--include-seen", cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert seen <= {r["item_id"] for r in json.loads(res.stdout)["recommendations"]}


def test_recommend_unknown_user_exit_2(work: Path, rating_model: Path) -> None:
    res = run("recommend", "--model", str(rating_model), "--user", "nobody", cwd=work)
    assert res.returncode == 2
    assert "unknown user 'nobody'" in res.stderr
    assert "--ratings" in res.stderr


def _fold_in_top3(model: Path, work: Path) -> tuple[Any, list[dict]]:
    """`recommend --user newbie --ratings new_user.csv -n 3 --json`: the run and its list."""
    res = run(
        "recommend", "--model", str(model), "--user", "newbie", "--ratings", "new_user.csv",
        "-n", "3", "--json", cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res, json.loads(res.stdout)["recommendations"]  # notes go to stderr


@pytest.mark.parametrize("which", ["rating", "implicit"])
def test_recommend_fold_in_new_user(work: Path, which: str, request) -> None:
    model = request.getfixturevalue(f"{which}_model")
    res, recs = _fold_in_top3(model, work)
    assert len(recs) == 3
    assert not {100, 101} & {r["item_id"] for r in recs}
    assert "999" in res.stderr  # the unknown item is reported (on stderr), not fatal
    assert "999" not in res.stdout


def test_fold_in_with_the_default_both_model(work: Path) -> None:
    """`rbmrec fit` without --orientation gives the "both" model; fold-in uses its user part."""
    from rbmrec.bundle import ModelBundle

    out = work / "both_rbm.npz"
    res = run("fit", "--data", "ratings.csv", *FAST, "--out", str(out), cwd=work)
    assert res.returncode == 0, res.stderr
    model = ModelBundle.load(out).model
    assert model.orientation == "both" and set(model.members_) == {"item", "user"}
    _, recs = _fold_in_top3(out, work)
    assert len(recs) == 3 and not {100, 101} & {r["item_id"] for r in recs}
    res = run("recommend", "--model", str(out), "--user", "u3", "-n", "4", "--json", cwd=work)
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["recommendations"]) == 4


def test_fit_and_recommend_rating_rbm_choice(work: Path) -> None:
    """`fit --model rating-rbm-choice` saves a ChooseAndLike whose members took --n-hidden and
    --epochs; `recommend` ranks by it, for a known user and a folded-in one."""
    from rbmrec.bundle import ModelBundle
    from rbmrec.models.choice import ChooseAndLike

    out = work / "choice.npz"
    res = run(
        "fit", "--data", "ratings.csv", "--model", "choose-and-like", *FAST, "--out", str(out),
        cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    model = ModelBundle.load(out).model
    assert isinstance(model, ChooseAndLike) and model.beta_ in model.betas
    members = (model.rating_model_, model.chooser_)
    assert [(m.n_hidden, m.n_epochs) for m in members] == [(8, 3), (8, 3)]
    res = run("recommend", "--model", str(out), "--user", "u3", "-n", "4", "--json", cwd=work)
    assert res.returncode == 0, res.stderr
    got = [r["item_id"] for r in json.loads(res.stdout)["recommendations"]]
    bundle = ModelBundle.load(out)
    want, _ = bundle.recommend("u3", N=4)
    assert got == [int(i) for i in want]
    _, recs = _fold_in_top3(out, work)
    assert len(recs) == 3 and not {100, 101} & {r["item_id"] for r in recs}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--learning-rate", "0.1"], "--learning-rate does not apply"),
        (["--batch-size", "10"], "--batch-size does not apply"),
        (["--validation-fraction", "0"], "holds out part of the ratings"),
        (["--orientation", "user"], "--orientation applies only"),
        (["--cluster", "local"], "--cluster trains"),
    ],
)
def test_fit_rating_rbm_choice_refuses_options_it_cannot_take(
    work: Path, extra: list[str], message: str
) -> None:
    res = run(
        "fit", "--data", "ratings.csv", "--model", "rating-rbm-choice", *extra, "--out",
        str(work / "never.npz"), cwd=work,
    )  # fmt: skip
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert not (work / "never.npz").exists()


def test_fit_reports_early_stopping_per_member(work: Path) -> None:
    out = work / "both_valid.npz"
    res = run(
        "fit", "--data", "ratings.csv", "--epochs", "200", "--n-hidden", "8", "--threads", "1",
        "--quiet", "--validation-fraction", "0.2", "--out", str(out), cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "(item member)" in res.stdout and "(user member)" in res.stdout


def test_fold_in_needs_user_orientation(work: Path) -> None:
    out = work / "item_rbm.npz"
    res = run(
        "fit", "--data", "ratings.csv", "--orientation", "item", *FAST, "--out", str(out),
        cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = run(
        "recommend", "--model", str(out), "--user", "x", "--ratings", "new_user.csv", cwd=work
    )
    assert res.returncode == 2
    assert "--orientation user" in res.stderr


def test_evaluate_writes_table_csv_json_and_plot(work: Path) -> None:
    res = run(
        "evaluate", "--data", "ratings.csv", "--models", "rbm,irbm,bias,pop,als", *FAST,
        "--out", "results.json", "--plot", "results.png", cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    for name in ("RatingRBM", "ImplicitRBM", "Bias", "Popularity", "ALS"):
        assert f"| {name} |" in res.stdout
    doc = json.loads((work / "results.json").read_text())
    assert [r["model"] for r in doc["rows"]] == ["RatingRBM", "ImplicitRBM", "Bias", "Popularity",
                                                 "ALS"]  # fmt: skip
    assert doc["metadata"]["data"] == "ratings"
    assert (work / "results.png").stat().st_size > 1000
    res = run(
        "benchmark", "--data", "ratings.csv", "--models", "bias,pop", "--out", "b.csv", cwd=work
    )
    assert res.returncode == 0, res.stderr
    assert (work / "b.csv").read_text().startswith("model,")


def test_tsv_with_custom_columns(work: Path) -> None:
    (work / "r.tsv").write_text("who\twhat\tstars\n1\t10\t5\n1\t11\t3\n2\t10\t4\n2\t12\t1\n")
    res = run(
        "evaluate", "--data", "r.tsv", "--user-col", "who", "--item-col", "what",
        "--rating-col", "stars", "--models", "pop", "--test-fraction", "0.25",
        "--validation-fraction", "0", cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "| Popularity |" in res.stdout


def test_datasets_list_and_describe(work: Path) -> None:
    res = run("datasets", "list", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "ml-100k" in res.stdout and "demo" in res.stdout
    res = run("datasets", "describe", "demo", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "ratings" in res.stdout and "users" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--data", "ratings.csv"], "--out"),
        (["fit", "--data", "nope.csv", "--out", "m.npz"], "nope.csv"),
        (["fit", "--data", "ratings.csv", "--epochs", "0", "--out", "m"], "--epochs"),
        (["fit", "--data", "ratings.csv", "--model", "svd", "--out", "m"], "--model"),
        (["fit", "--data", "ratings.csv", "--user-col", "uid", "--out", "m"], "uid"),
        (["fit", "--data", "ratings.csv", "--dataset", "demo", "--out", "m"], "not both"),
        (["evaluate", "--data", "ratings.csv", "--models", "rbm,foo"], "foo"),
        (["evaluate", "--test-fraction", "1.5"], "--test-fraction"),
        (["recommend", "--model", "missing.npz", "--user", "1"], "missing.npz"),
        (["recommend", "--model", "garbage.npz", "--user", "1"], "garbage.npz"),
        (["datasets", "describe", "ml-nope"], "ml-nope"),
        (["datasets", "describe"], "name"),
        (["datasets", "explode"], "explode"),
        (["fit", "--dataset", "ml-nope", "--out", "m"], "ml-nope"),
    ],
)
def test_bad_arguments_exit_2_with_message(work: Path, args: list[str], message: str) -> None:
    (work / "garbage.npz").write_bytes(b"not a zip file")
    res = run(*args, cwd=work)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_malformed_csv_exit_2(work: Path) -> None:
    (work / "bad.csv").write_text("user_id,item_id,rating\n1,2,5\n1,3,oops\n")
    res = run("fit", "--data", "bad.csv", "--out", "m", *FAST, cwd=work)
    assert res.returncode == 2
    assert "bad.csv" in res.stderr
    assert "Traceback" not in res.stderr


def test_demo_on_small_file(work: Path) -> None:
    res = run("demo", "--data", "ratings.csv", "--models", "rbm,irbm,bias", *FAST, cwd=work)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "fitting RatingRBM" in out and "| ImplicitRBM |" in out
    assert "Top-10 from RatingRBM" in out and "Sample user" in out
    assert "Movie" in out.split("Top-10 from ImplicitRBM", 1)[1]
    assert "demo finished" in out


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
@pytest.mark.parametrize("model", ["implicit-rbm", "rating-rbm"])
def test_fit_ctrl_c_keeps_model(work: Path, model: str) -> None:
    """Ctrl-C during training saves a usable model (for the default "both" RatingRBM: its
    item-based member alone, interrupted before the user-based one starts)."""
    import signal
    import time

    from rbmrec.bundle import ModelBundle

    out = work / f"interrupted-{model}.npz"
    env = _env(NUMBA_NUM_THREADS="1")
    env.pop("RBMREC_DATA_DIR", None)
    with open(work / "fit.err", "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "rbmrec", "fit", "--data", "ratings.csv",
                "--model", model, "--epochs", "100000", "--n-hidden", "8",
                "--threads", "1", "--validation-fraction", "0", "--out", str(out),
            ],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        # Off a terminal the progress is one line per epoch ("  epoch 3/100000: ...").
        while "epoch 1/" not in (work / "fit.err").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # a few epochs in
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, (work / "fit.err").read_text()  # as the README promises
    assert "model written to" in stdout
    assert "saved" in (work / "fit.err").read_text()
    assert out.is_file()
    if model == "rating-rbm":
        fitted = ModelBundle.load(out).model
        assert list(fitted.members_) == ["item"] and fitted.blend_weight_ == 1.0
        assert fitted.predict([0, 1], [0, 1]).shape == (2,)


@pytest.mark.slow
def test_default_demo_runs(tmp_path: Path) -> None:
    """``make demo``'s command on the embedded data: table, sample user, under two minutes."""
    import time

    t0 = time.perf_counter()
    res = run("demo", "--quiet", cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    for name in ("RatingRBM", "ImplicitRBM", "Bias", "ALS"):
        assert f"| {name} |" in res.stdout
    assert "Comparison on demo" in res.stdout
    assert res.stdout.count("Film") >= 20
    assert time.perf_counter() - t0 < 240  # two minutes on an idle 2-core machine


def test_movielens_folder_and_zip(work: Path) -> None:
    import zipfile

    folder = work / "ml-100k"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    rows = {(u, i) for u, i in zip(rng.integers(1, 30, 400), rng.integers(1, 25, 400), strict=True)}
    lines = [f"{u}\t{i}\t{int(rng.integers(1, 6))}\t8812{k:05d}" for k, (u, i) in enumerate(rows)]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    res = run("evaluate", "--data", str(folder), "--models", "pop,bias", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "| Bias |" in res.stdout
    with zipfile.ZipFile(work / "ml-100k.zip", "w") as zf:
        zf.write(folder / "u.data", "ml-100k/u.data")
    res = run("evaluate", "--data", "ml-100k.zip", "--models", "pop", cwd=work)
    assert res.returncode == 0, res.stderr


def test_datasets_download_demo_is_a_no_op(work: Path) -> None:
    res = run("datasets", "download", "demo", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "embedded" in res.stdout


def test_unexpected_error_exit_1(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from rbmrec import cli

    def boom(args):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("rbmrec.cli.datasets.run", boom)
    assert cli.main(["datasets", "list"]) == 1
    err = capsys.readouterr().err
    assert "kaboom" in err and "unexpected" in err


def _swallowed_ctrl_c() -> None:
    """Press Ctrl-C and swallow the KeyboardInterrupt, as LLVM's ctypes callback does when
    SIGINT lands while Numba compiles (skips where SIGINT has no Python handler)."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored in this process")
    try:
        signal.raise_signal(signal.SIGINT)
    except KeyboardInterrupt:
        pass


def test_error_after_a_swallowed_ctrl_c_is_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """SIGINT inside LLVM's ctypes callback is swallowed ("Exception ignored") and Numba then
    fails with an unrelated RuntimeError: the command still ends as Ctrl-C (exit 130)."""
    import signal

    from rbmrec import cli

    def compile_interrupted(args):
        _swallowed_ctrl_c()
        raise RuntimeError("no compiled object yet for <Library 'x'>")

    monkeypatch.setattr("rbmrec.cli.datasets.run", compile_interrupted)
    assert cli.main(["datasets", "list"]) == 130
    err = capsys.readouterr().err
    assert "interrupted by Ctrl-C" in err and "RuntimeError" in err and "Traceback" not in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    # Without a Ctrl-C the same error is a crash (exit 1), also on the next command.
    monkeypatch.setattr(
        "rbmrec.cli.datasets.run", lambda args: (_ for _ in ()).throw(RuntimeError())
    )
    assert cli.main(["datasets", "list"]) == 1


@pytest.mark.parametrize(
    ("command", "model"), [("fit", "rbm"), ("fit", "irbm"), ("evaluate", "rbm,bias")]
)
def test_swallowed_ctrl_c_still_stops_training(
    work: Path, command: str, model: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A Ctrl-C swallowed while Numba compiles (no exception follows) still stops training
    after the current epoch: fit saves the model and exits 130, evaluate stops."""
    from rbmrec.bundle import ModelBundle
    from rbmrec.cli import _common

    def swallowing_note(keys):
        _swallowed_ctrl_c()

    monkeypatch.setattr(_common, "compile_note", swallowing_note)
    out = work / ("swallowed.npz" if command == "fit" else "swallowed.md")
    if command == "fit":
        extra = ["--model", model] + (["--orientation", "user"] if model == "rbm" else [])
    else:
        extra = ["--models", model]
    code, stdout, err = run_here(
        work, command, "--data", "ratings.csv", "--epochs", "50", "--n-hidden", "4",
        "--threads", "1", "--quiet", *extra, "--out", str(out),
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 130, err
    if command == "fit":
        # One epoch, then the fit ends: ImplicitRBM keeps its first member and does not
        # train the second.
        assert out.exists() and "stopped after 1 epochs" in stdout
        fitted = ModelBundle.load(out).model
        assert len(fitted.history_) == 1 and fitted.interrupted_
        if model == "irbm":
            assert fitted.n_models_ == 1
    else:
        assert not out.exists() and "fitting Bias" not in stdout
        assert "not finished: RatingRBM, Bias" in err


def test_save_failure_after_ctrl_c_is_still_reported(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Ctrl-C, then the save of the model trained so far fails: the error names the
    problem, and the exit code stays 130."""
    import errno

    from rbmrec.cli import _common

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_common, "compile_note", lambda keys: _swallowed_ctrl_c())
    monkeypatch.setattr(np, "savez", disk_full)
    out = work / "full_disk.npz"
    code, _, err = run_here(
        work, "fit", "--data", "ratings.csv", "--model", "rbm", "--orientation", "user",
        "--epochs", "50", "--n-hidden", "4", "--threads", "1", "--quiet", "--out", str(out),
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 130, err
    assert f"cannot write the model to {out}: No space left on device" in err
    assert "interrupted by Ctrl-C" in err and not out.exists()


def test_plot_name_without_suffix_gets_png(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, out, err = run_here(
        work, "evaluate", "--data", "ratings.csv", "--models", "bias", "--plot", "chart",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert (work / "chart.png").is_file() and "plot written to chart.png" in out


def test_announced_models_show_their_parameters() -> None:
    """The ``params`` column of evaluate/benchmark shows the wrapped model, not the wrapper."""
    from rbmrec import RatingRBM
    from rbmrec.cli._models import Announced
    from rbmrec.evaluation.report_rows import model_params as _params

    text = _params(Announced("RatingRBM", RatingRBM(n_hidden=3)))
    assert "'n_hidden': 3" in text and "_Announced" not in text


def test_ids_with_leading_zeros_round_trip(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Ids written ``0007``/``00120`` are used as written: --user, --ratings and the output."""
    lines = ["user_id,item_id,rating,title"]
    for line in (work / "ratings.csv").read_text().splitlines()[1:]:
        user, item, rating, title = line.split(",")
        lines.append(f"{int(user[1:]):04d},{int(item):05d},{rating},{title}")
    (work / "padded.csv").write_text("\n".join(lines) + "\n")
    (work / "padded_new.csv").write_text("item,rating\n00100,5\n00101,4\n")
    model = work / "padded.npz"
    code, _, err = run_here(
        work, "fit", "--data", "padded.csv", "--orientation", "user", *FAST, "--out",
        str(model), monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_here(
        work, "recommend", "--model", str(model), "--user", "0007", "-n", "3", "--json",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    recs = json.loads(out)["recommendations"]
    assert all(len(r["item_id"]) == 5 and r["title"].startswith("Movie") for r in recs)
    code, out, err = run_here(
        work, "recommend", "--model", str(model), "--user", "new", "--ratings",
        "padded_new.csv", "-n", "3", "--json", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0 and "unknown" not in err, err
    assert {"00100", "00101"}.isdisjoint(r["item_id"] for r in json.loads(out)["recommendations"])


def test_compile_note_only_while_kernels_are_not_cached(
    work: Path, rating_model: Path, implicit_model: Path, tmp_path: Path, capsys
) -> None:
    """The first-run note looks where Numba writes its cache, and only for the RBMs."""
    from rbmrec.cli import _common

    # The fixtures' `rbmrec fit` runs compiled both RBMs into the cache this process uses.
    assert _common.uncompiled(["rbm", "irbm", "als", "bias"]) == []
    _common.compile_note(["rating-rbm", "implicit-rbm"])
    assert capsys.readouterr().err == ""
    # A fresh cache folder: both RBMs would compile (checked in a new process, since Numba
    # reads NUMBA_CACHE_DIR at import).
    env = _env(NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    code = "from rbmrec.cli import _common; _common.compile_note(['rbm', 'irbm', 'pop'])"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "first run of RatingRBM and ImplicitRBM" in res.stderr
    assert "Popularity" not in res.stderr


# --------------------------------------------------------------------------- argument checks
# In-process runs (cli.main) where a subprocess adds nothing: they skip the interpreter and
# Numba start-up of ``run``.


def run_here(
    cwd: Path, *args: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> tuple[int, str, str]:
    """``rbmrec *args`` in this process from ``cwd``: exit code, stdout, stderr."""
    from rbmrec import cli

    monkeypatch.chdir(cwd)
    monkeypatch.delenv("RBMREC_DATA_DIR", raising=False)
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _copy_model(model: Path, dest: Path, sides: tuple[str, ...] = ()) -> Path:
    """A copy of ``model`` and the named side files (three-file models) in ``dest``; the
    copy's path."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for suffix in ("", *sides):
        shutil.copy(str(model) + suffix, dest / (model.name + suffix))
    return dest / model.name


def _seen_items(work: Path, user: str) -> set[int]:
    import csv

    with open(work / "ratings.csv") as fh:
        return {int(r["item_id"]) for r in csv.DictReader(fh) if r["user_id"] == user}


def test_recommend_known_user_with_ratings_merges_and_excludes_seen(
    work: Path, rating_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a known user's --ratings file adds to their training ratings, and every
    rated item (training or file) stays out of the list."""
    seen = _seen_items(work, "u3")
    old, new = sorted(seen)[0], min({100, 101, 102} - seen)
    (work / "u3_more.csv").write_text(f"item,rating\n{old},3\n{new},5\n")
    code, out, err = run_here(
        work, "recommend", "--model", str(rating_model), "--user", "u3", "--ratings",
        "u3_more.csv", "-n", "40", "--json", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    recs = {r["item_id"] for r in json.loads(out)["recommendations"]}
    assert recs and not recs & (seen | {new})
    assert len(recs) == 40 - len(seen | {new})  # every other item is listed
    assert "merged" in err and "1 replaced" in err


def test_recommend_missing_seen_file_exit_2_unless_include_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """without ``.seen.npz`` (three-file models) the already-rated items cannot be
    left out: refuse."""
    model = _copy_model(LEGACY_RATING, tmp_path, sides=(".ids.json",))
    (tmp_path / "new_user.csv").write_text("item,rating\nm1,5\nm2,4\n")
    code, _, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "u3",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2
    assert f"{model}.seen.npz is missing" in err and "--include-seen" in err
    code, out, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "u3", "--include-seen",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "top 10 for user u3" in out
    # A new user's row comes from --ratings alone: no training ratings are needed.
    code, out, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "new", "--ratings",
        "new_user.csv", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "top 10 for user new" in out


def _damage(model: Path, how: str) -> Path:
    """The side file of ``model`` that ``how`` damages (in place)."""
    ids_path, seen_path = Path(f"{model}.ids.json"), Path(f"{model}.seen.npz")
    if how == "truncated seen":
        seen_path.write_bytes(seen_path.read_bytes()[:200])
        return seen_path
    if how == "seen of another model":
        import scipy.sparse as sp

        sp.save_npz(seen_path, sp.csr_matrix(np.ones((3, 4))))
        return seen_path
    doc = json.loads(ids_path.read_text())
    if how == "empty ids":
        ids_path.write_text("{}")
    elif how == "truncated ids":
        ids_path.write_text(ids_path.read_text()[:50])
    elif how == "ids of another model":
        doc["item_ids"] = doc["item_ids"][:-1]
        ids_path.write_text(json.dumps(doc))
    return ids_path


@pytest.mark.parametrize(
    "how",
    ["truncated seen", "seen of another model", "empty ids", "truncated ids",
     "ids of another model"],
)  # fmt: skip
def test_recommend_damaged_side_files_exit_2_naming_the_file(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a damaged or foreign side file of a three-file model is a ModelFileError
    naming it, exit 2."""
    model = _copy_model(LEGACY_RATING, tmp_path, LEGACY_SIDES)
    damaged = _damage(model, how)
    code, _, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "u3",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2, err
    assert str(damaged) in err and "refit" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item,rating\n100,5\n101,4\n100,3\n", "item 100 appears 2 times (lines 2, 4)"),
        ("item,rating\n100,5\n101,7\n", "line 3: rating 7 is not one of the model's rating levels"),
        ("item,rating\n100,1\n", "line 2: rating 1 is not one of the model's rating levels"),
        ("item,rating\n100,nan\n", "line 2: rating 'nan' is not a finite number"),
        ("item,rating\n100,inf\n", "line 2: rating 'inf' is not a finite number"),
        ("item,rating\n100,0\n", "line 2: rating 0 is not one of the model's rating levels"),
        ("item,rating\n100;5\n", "got '100;5'"),  # item 13: the closing quote is kept
        ("100,five\n101,4\n", "line 1: rating 'five' is not a number"),  # not a header
    ],
)
def test_fold_in_file_errors_name_file_and_line(
    work: Path,
    rating_model: Path,
    text: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    """Items 9, 12, 13: repeated items and bad ratings of --ratings are errors naming the
    file and line (the rating RBM was fitted on the levels 3, 4, 5)."""
    (work / "bad_fold.csv").write_text(text)
    code, _, err = run_here(
        work, "recommend", "--model", str(rating_model), "--user", "new", "--ratings",
        "bad_fold.csv", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2, err
    assert "bad_fold.csv, line" in err or "bad_fold.csv: item" in err
    assert message in err


def _fold_in_json(
    cwd: Path, model: Path, text: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> list[dict]:
    """``recommend --user new --ratings <text> -n 3 --json`` in ``cwd``: its list (exit 0)."""
    (cwd / "fold_in.csv").write_text(text)
    code, out, err = run_here(
        cwd, "recommend", "--model", str(model), "--user", "new", "--ratings", "fold_in.csv",
        "-n", "3", "--json", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out)["recommendations"]


def test_fold_in_for_a_gaussian_model_takes_any_finite_rating(
    tmp_path: Path, rating_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A gaussian RatingRBM has no levels: every fold-in rating was refused as "not one of
    the model's rating levels ()"."""
    from rbmrec import RatingRBM
    from rbmrec.bundle import ModelBundle

    fitted = ModelBundle.load(rating_model)
    gaussian = RatingRBM(
        visible="gaussian", orientation="user", conditional=False, n_hidden=3, n_epochs=1,
        random_state=0, num_threads=1,
    ).fit(fitted.seen)  # fmt: skip
    model = tmp_path / "gauss.npz"
    ModelBundle(gaussian, fitted.user_ids, fitted.item_ids, seen=fitted.seen).save(model)
    text = "item,rating\n100,4.5\n101,2\n"
    recs = _fold_in_json(tmp_path, model, text, monkeypatch, capsys)
    assert len(recs) == 3 and not {100, 101} & {r["item_id"] for r in recs}


def test_fold_in_rating_near_a_level_maps_like_the_model(
    work: Path, rating_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The CLI's check of --ratings uses the model's level rule: 5.0000001 (float noise) is
    level 5, and 4.99 is refused."""
    (work / "near.csv").write_text("item,rating\n100,5.0000001\n101,4\n")
    code, _, err = run_here(
        work, "recommend", "--model", str(rating_model), "--user", "new", "--ratings",
        "near.csv", "-n", "3", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    (work / "off.csv").write_text("item,rating\n100,4.99\n")
    code, _, err = run_here(
        work, "recommend", "--model", str(rating_model), "--user", "new", "--ratings",
        "off.csv", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "rating 4.99 is not one of the model's rating levels" in err


def test_fold_in_file_with_comment_and_blank_lines_before_header(
    work: Path, rating_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """'#' and blank lines before the header are skipped."""
    text = "# my ratings\n\nitem,rating\n100,5\n101,4\n"
    recs = _fold_in_json(work, rating_model, text, monkeypatch, capsys)
    assert len(recs) == 3 and not {100, 101} & {r["item_id"] for r in recs}


def test_keyerror_messages_lose_only_their_repr_quotes(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """main unquotes KeyError messages only."""
    from rbmrec import cli
    from rbmrec.errors import DataError

    class UnknownThing(DataError, KeyError):
        pass

    def boom(args):
        raise UnknownThing("unknown id 'x'")

    monkeypatch.setattr("rbmrec.cli.datasets.run", boom)
    assert cli.main(["datasets", "list"]) == 2
    assert capsys.readouterr().err.strip() == "rbmrec: error: unknown id 'x'"


def test_fit_write_failure_keeps_previous_model(
    work: Path, rating_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a write error (disk full) leaves the earlier model as it was, removes the
    temporary file and exits 2 naming the target."""
    import errno
    import stat

    model = _copy_model(rating_model, tmp_path / "models")

    def disk_full(file, *args, **kwargs):
        file.write(b"half-written")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    os.chmod(model, 0o640)  # a replaced file would keep its mode; this one is not replaced
    before = {p.name: p.read_bytes() for p in model.parent.iterdir()}

    def fit() -> tuple[int, str]:
        code, _, err = run_here(
            work, "fit", "--data", "ratings.csv", "--epochs", "1", "--n-hidden", "4",
            "--threads", "1", "--quiet", "--orientation", "user", "--out", str(model),
            monkeypatch=monkeypatch, capsys=capsys,
        )  # fmt: skip
        return code, err

    code, err = fit()
    assert code == 2, err
    assert f"cannot write the model to {model}: No space left on device" in err
    assert ".tmp" not in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in model.parent.iterdir()} == before
    assert stat.S_IMODE(model.stat().st_mode) == 0o640
    # Without the failure the file is replaced, keeping the old mode.
    monkeypatch.undo()
    code, err = fit()
    assert code == 0, err
    after = {p.name: p.read_bytes() for p in model.parent.iterdir()}
    assert sorted(after) == sorted(before) and after[model.name] != before[model.name]
    assert stat.S_IMODE(model.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--out", "ratings.csv/m.npz"], "ratings.csv is not a directory"),
        (["fit", "--out", "a_folder.npz"], "a_folder.npz: is a directory"),
        (["evaluate", "--out", "results.txt"], "unsupported file type '.txt'"),
        (["evaluate", "--plot", "plot.xyz"], "--plot plot.xyz: unsupported file type"),
        (["evaluate", "--out", "a_folder.npz/sub/r.csv"], None),  # created: not an error
        # Named before any data is loaded, in words (not "PosixPath('.') has an empty name").
        (["fit", "--out", ""], "--out '': give a file name for the model"),
        (["fit", "--out", "/"], "--out '/': give a file name for the model"),
        (["evaluate", "--test-fraction", "0"], "expected a fraction in (0, 1), got '0'"),
        (["evaluate", "--seed", "-1"], "--seed: expected an integer in [0, 2**63)"),
        (["fit", "--out", "m", "--threads", "-2"], "--threads: expected a non-negative"),
    ],
)
def test_output_paths_checked_before_loading_data(
    work: Path, args: list[str], message: str | None, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """unusable --out/--plot paths are refused before the data is read (the data
    file does not even exist here)."""
    (work / "a_folder.npz").mkdir(exist_ok=True)
    code, _, err = run_here(
        work, *args, "--data", "no_such_data.csv", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2
    if message is None:
        assert "no_such_data.csv" in err
    else:
        assert message in err and "no_such_data.csv" not in err and "PosixPath" not in err


def test_suspicious_rating_levels() -> None:
    """values far from the others or very rare are flagged; regular scales are not."""
    from rbmrec.cli.fit import suspicious_levels as _suspicious_levels

    scale = np.repeat(np.arange(1.0, 6.0), 100)
    assert _suspicious_levels(scale) == []
    assert _suspicious_levels(np.repeat(np.arange(0.5, 5.5, 0.5), 10)) == []
    assert [v for v, _, _ in _suspicious_levels(np.r_[scale, 100.0])] == [100.0]
    assert [v for v, _, _ in _suspicious_levels(np.r_[scale, -1.0])] == [-1.0]
    rare = np.r_[np.repeat(np.arange(1.0, 6.0), 4000), 6.0]
    assert _suspicious_levels(rare) == [(6.0, 1, "used by under 0.01% of the ratings")]


def test_fit_warns_about_a_typo_rating(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """one 100 among 3..5 is fitted (it is data) but named in a warning."""
    lines = (work / "ratings.csv").read_text().splitlines()
    lines += ["typo,100,100,Movie 100", "typo,101,4,Movie 101"]
    (tmp_path / "typo.csv").write_text("\n".join(lines) + "\n")
    code, _, err = run_here(
        tmp_path, "fit", "--data", "typo.csv", "--epochs", "1", "--n-hidden", "4",
        "--threads", "1", "--quiet", "--orientation", "user", "--out", "m.npz",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "warning: suspicious rating value(s): 100 (1 rating" in err
    code, _, err = run_here(
        work, "fit", "--data", "ratings.csv", "--epochs", "1", "--n-hidden", "4",
        "--threads", "1", "--quiet", "--orientation", "user", "--out", str(tmp_path / "ok"),
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "warning" not in err


def test_no_header_and_duplicates_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """headerless files and repeated ratings can be read from the command line,
    and the errors point to those options."""
    rows = [f"{u}\t{i}\t{(u + i) % 5 + 1}" for u in range(1, 21) for i in range(1, 11)]
    (tmp_path / "u.data").write_text("\n".join(rows) + "\n")
    common = ["--models", "pop", "--validation-fraction", "0"]
    code, _, err = run_here(
        tmp_path, "evaluate", "--data", "u.data", *common, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and "--no-header" in err
    code, out, err = run_here(
        tmp_path, "evaluate", "--data", "u.data", "--no-header", *common,
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "| Popularity |" in out
    (tmp_path / "dup.csv").write_text("user_id,item_id,rating\n" + "\n".join(
        r.replace("\t", ",") for r in [*rows, "1\t1\t2"]
    ) + "\n")  # fmt: skip
    code, _, err = run_here(
        tmp_path, "evaluate", "--data", "dup.csv", *common, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and "--duplicates" in err
    code, out, err = run_here(
        tmp_path, "evaluate", "--data", "dup.csv", "--duplicates", "last", *common,
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
@pytest.mark.parametrize("command", ["evaluate", "demo"])
def test_comparison_ctrl_c_stops_and_writes_nothing(work: Path, command: str) -> None:
    """Ctrl-C during a model's fit ends the comparison (evaluate, and demo too): the next
    model is not fitted, the finished rows are shown, --out is not written, exit 130."""
    import signal
    import time

    out = work / "interrupted_results.md"
    env = _env(NUMBA_NUM_THREADS="1")
    env.pop("RBMREC_DATA_DIR", None)
    with open(work / "evaluate.err", "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "rbmrec", command, "--data", "ratings.csv",
                "--models", "pop,rbm,bias", "--epochs", "100000", "--n-hidden", "8",
                "--threads", "1", "--validation-fraction", "0", "--out", str(out),
            ],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while (
            "epoch 1/" not in (work / "evaluate.err").read_text() and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    stderr = (work / "evaluate.err").read_text()
    assert proc.returncode == 130, stderr
    assert "fitting Bias" not in stdout
    assert "Partial results (interrupted during RatingRBM)" in stdout
    assert "| Popularity |" in stdout and "| RatingRBM |" not in stdout
    assert "not finished: RatingRBM, Bias" in stderr
    assert not out.exists()


# ------------------------------------------------------------------ output paths and interrupts


def test_failed_plot_write_keeps_previous_plot(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """--plot (and --out) go to a temporary file renamed into place: a failed write
    (disk full) keeps the previous file and leaves no temporary file behind."""
    import errno

    from matplotlib.figure import Figure

    out_dir = tmp_path / "results"
    out_dir.mkdir()
    plot, table = out_dir / "plot.png", out_dir / "table.csv"
    plot.write_bytes(b"previous plot")
    table.write_text("previous table\n")

    def disk_full(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    code, _, err = run_here(
        work, "evaluate", "--data", "ratings.csv", "--models", "pop", "--validation-fraction",
        "0", "--out", str(table), "--plot", str(plot), monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2, err
    assert f"--plot {plot}: cannot write: No space left on device" in err
    assert plot.read_bytes() == b"previous plot"
    assert "Popularity" in table.read_text()  # written before the plot failed
    assert sorted(p.name for p in out_dir.iterdir()) == ["plot.png", "table.csv"]


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf100,5\n101,4\n",  # a byte order mark (Excel's "CSV UTF-8")
        b"\xef\xbb\xbfitem,rating\r\n100,5\r\n101,4\r\n",
        b'"item","rating"\n"100","5"\n"101",4\n',  # quoted fields
        b"item\trating\n100\t5\n101\t4\n",
    ],
    ids=["bom", "bom-header-crlf", "quoted", "tabs"],
)
def test_fold_in_file_with_bom_or_quotes_keeps_every_rating(
    work: Path, rating_model: Path, data: bytes, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a BOM or CSV quotes must not turn the first item (or every item) into an
    unknown id that is silently dropped and then recommended back."""
    (work / "enc.csv").write_bytes(data)
    code, out, err = run_here(
        work, "recommend", "--model", str(rating_model), "--user", "new", "--ratings",
        "enc.csv", "-n", "40", "--json", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "unknown" not in err
    recs = {r["item_id"] for r in json.loads(out)["recommendations"]}
    assert len(recs) == 38 and not {100, 101} & recs


def test_fold_in_file_not_utf8_names_the_file(
    work: Path, rating_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a latin-1 file is a one-line usage error naming the file."""
    (work / "latin.csv").write_bytes(b"item,rating\n100,5\ncaf\xe9,4\n")
    code, _, err = run_here(
        work, "recommend", "--model", str(rating_model), "--user", "new", "--ratings",
        "latin.csv", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2
    assert err.startswith("rbmrec: error: --ratings latin.csv: not UTF-8") and "0xe9" in err
    assert len(err.strip().splitlines()) == 1


def test_fold_in_ratings_from_stdin(
    work: Path, rating_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``--ratings -`` reads standard input."""
    import io

    stdin = io.TextIOWrapper(io.BytesIO(b"item,rating\n100,5\n101,4\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, err = run_here(
        work, "recommend", "--model", str(rating_model), "--user", "new", "--ratings", "-",
        "-n", "3", "--json", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    recs = {r["item_id"] for r in json.loads(out)["recommendations"]}
    assert len(recs) == 3 and not {100, 101} & recs


@pytest.mark.parametrize("side", [".ids.json", ".seen.npz"])
def test_recommend_refuses_foreign_side_file_of_the_same_shape(
    tmp_path: Path, side: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a side file of another model fitted on the same data (so the shapes match)
    is refused, naming it, instead of being used silently."""
    import shutil

    model = _copy_model(LEGACY_RATING, tmp_path, LEGACY_SIDES)
    shutil.copy(str(LEGACY_IRBM) + side, str(model) + side)
    code, _, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "u3",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2, err
    assert f"{model}{side}" in err and "another model" in err and "refit" in err


def test_recommend_checks_model_class_and_reads_old_side_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """an ids.json naming another model class is refused; side files written before
    the hash and token existed still work (with a note)."""
    model = _copy_model(LEGACY_RATING, tmp_path, LEGACY_SIDES)
    ids_path = Path(f"{model}.ids.json")
    doc = json.loads(ids_path.read_text())
    assert doc["model"] == "RatingRBM" and len(doc["token"]) == 32
    old = {k: v for k, v in doc.items() if k not in ("model_sha256", "token")}
    ids_path.write_text(json.dumps(old))
    code, out, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "u3",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "for user u3:" in out and "older rbmrec" in err
    ids_path.write_text(json.dumps({**old, "model": "ImplicitRBM"}))
    code, _, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "u3",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2
    assert f"{ids_path} was written for a model of class ImplicitRBM" in err and "RatingRBM" in err


def test_recommend_huge_n_lists_every_unseen_item(
    work: Path, rating_model: Path, implicit_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """-n beyond the item count lists every item (used to fail: array is too big)."""
    seen = _seen_items(work, "u3")
    for model in (rating_model, implicit_model):
        code, out, err = run_here(
            work, "recommend", "--model", str(model), "--user", "u3", "-n",
            "9223372036854775807", "--json", monkeypatch=monkeypatch, capsys=capsys,
        )  # fmt: skip
        assert code == 0, err
        recs = [r["item_id"] for r in json.loads(out)["recommendations"]]
        assert len(recs) == 40 - len(seen) and not set(recs) & seen


def _flat_ratings(path: Path, rating: int = 2) -> Path:
    rows = [f"{u},{i},{rating}" for u in range(1, 21) for i in range(1, 7)]
    path.write_text("user_id,item_id,rating\n" + "\n".join(rows) + "\n")
    return path


def test_evaluate_empty_test_split_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a test fraction that holds out nothing is refused (it printed nan metrics
    and exited 0)."""
    _flat_ratings(tmp_path / "r.csv", rating=4)
    code, out, err = run_here(
        tmp_path, "evaluate", "--data", "r.csv", "--models", "pop", "--validation-fraction",
        "0", "--test-fraction", "0.001", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2
    assert "the test split is empty" in err and "120 ratings" in err and "120 train" in err
    assert "| Popularity |" not in out


def test_evaluate_warns_when_no_held_out_rating_is_relevant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """all ratings below the threshold: exit 0 (rmse is valid) with a warning."""
    _flat_ratings(tmp_path / "r.csv", rating=2)
    code, out, err = run_here(
        tmp_path, "evaluate", "--data", "r.csv", "--models", "pop,bias",
        "--validation-fraction", "0", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "warning: no held-out rating is >= --relevance-threshold 4" in err
    assert "| Bias |" in out
    code, _, err = run_here(
        tmp_path, "evaluate", "--data", "r.csv", "--models", "pop", "--validation-fraction",
        "0", "--relevance-threshold", "2", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0 and "warning" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "demo", "--user-col", "uid"], "--user-col applies only to CSV/TSV"),
        (["--data", "demo", "--no-header"], "--no-header applies only to CSV/TSV/parquet"),
        (["--item-col", "i", "--rating-col", "r"], "--item-col, --rating-col apply only to"),
        (["--data", "ml_folder", "--no-header"], "not to --data ml_folder (a MovieLens folder)"),
    ],
)
def test_table_options_refused_for_other_data(
    tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """column options with a named data set, the demo data or a MovieLens folder
    were silently ignored; now a usage error before any work."""
    folder = tmp_path / "ml_folder"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t5\t881250949\n2\t1\t3\t881250949\n")
    code, out, err = run_here(
        tmp_path, "evaluate", *args, "--models", "pop", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2
    assert message in err and "data:" not in out


def test_table_options_still_work_for_files(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """the same options on a CSV file, and defaults everywhere, are accepted."""
    code, out, err = run_here(
        work, "evaluate", "--data", "ratings.csv", "--user-col", "user_id", "--models", "pop",
        "--duplicates", "error", "--validation-fraction", "0",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "| Popularity |" in out


def test_orientation_refused_for_implicit_rbm(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """--orientation was ignored by implicit-rbm; refused before reading the data
    (which does not exist here)."""
    code, _, err = run_here(
        work, "fit", "--data", "no_such.csv", "--model", "implicit-rbm", "--orientation",
        "item", "--out", "x.npz", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2
    assert "--orientation applies only to --model rating-rbm" in err
    assert "no_such.csv" not in err


def test_datasets_download_uses_a_copy_in_rbmrec_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """a release found through RBMREC_DATA_DIR is reported, not downloaded again;
    a missing one names the command-line command."""
    from rbmrec import cli
    from rbmrec.data import datasets

    folder = tmp_path / "data" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t1\t5\t881250949\n")
    monkeypatch.setenv("RBMREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RBMREC_CACHE_DIR", str(tmp_path / "cache"))
    assert datasets.locate("ml-100k") is not None

    def no_network(*args, **kwargs):
        raise AssertionError("download called")

    monkeypatch.setattr(datasets, "download", no_network)
    capsys.readouterr()
    assert cli.main(["datasets", "download", "ml-100k"]) == 0
    out = capsys.readouterr().out
    assert "ml-100k is already at" in out and str(folder) in out
    assert cli.main(["datasets", "describe", "ml-1m"]) == 2
    assert "`rbmrec datasets download ml-1m`" in capsys.readouterr().err


def test_recommend_model_name_without_npz_suffix(
    tmp_path: Path, rating_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`fit --out mm` writes mm.npz; `recommend --model mm` finds it."""
    model = _copy_model(rating_model, tmp_path)
    code, out, err = run_here(
        tmp_path, "recommend", "--model", str(model.with_suffix("")), "--user", "u3",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "top 10 for user u3" in out


# ---------------------------------------------------------------------- messages and file names


def test_outputs_that_would_overwrite_the_data_or_miss_the_file_name_are_refused(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import shutil

    data = work / "ratings_copy.csv"
    shutil.copy(work / "ratings.csv", data)
    before = data.read_bytes()
    for cmd in ("evaluate", "benchmark"):
        code, _, err = run_here(
            work, cmd, "--data", str(data), "--models", "pop", "--out", str(data),
            monkeypatch=monkeypatch, capsys=capsys,
        )  # fmt: skip
        assert code == 2 and "is the --data file" in err, err
    assert data.read_bytes() == before
    (work / "models_dir").mkdir(exist_ok=True)
    code, _, err = run_here(
        work, "fit", "--data", str(data), "--out", "models_dir/",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "give a file name" in err, err
    assert not (work / "models_dir.npz").exists()
    code, _, err = run_here(
        work, "evaluate", "--data", str(data), "--models", "pop", "--out", "res.csv/",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "give a file name" in err, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plot", "p.pgf"], "unsupported file type '.pgf'"),
        (["--seed", str(2**63)], "an integer in [0, 2**63)"),
        (["--relevance-threshold", "nan"], "a finite number"),
        (["--test-fraction", "0.99", "--validation-fraction", "0.99"], "training split is empty"),
    ],
)
def test_evaluate_refuses_unusable_options_before_the_work(
    work: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, _, err = run_here(
        work, "evaluate", "--data", "ratings.csv", "--models", "pop", *args,
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2 and message in err, err


def test_results_metadata_records_the_arguments_given_to_main(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, _, err = run_here(
        work, "evaluate", "--data", "ratings.csv", "--models", "pop", "--out", "meta.json",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    meta = json.loads((work / "meta.json").read_text())["metadata"]
    assert meta["command"] == "rbmrec evaluate --data ratings.csv --models pop --out meta.json"


# --------------------------------------------------------------------------- model bundle file


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "is corrupted or not an rbmrec model bundle"),
        ("foreign", "is not an rbmrec model bundle"),
        ("bare model", "ids.json is missing"),
    ],
)
def test_recommend_damaged_or_foreign_bundle_exit_2_naming_the_file(
    tmp_path: Path,
    rating_model: Path,
    damage: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    """A truncated bundle, an .npz of other arrays, or a model file without its id maps is
    a one-line error naming the file (exit 2)."""
    from rbmrec.bundle import ModelBundle

    model = _copy_model(rating_model, tmp_path)
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[:500])
    elif damage == "foreign":
        np.savez(model, weights=np.ones(3))
    else:
        ModelBundle.load(rating_model).model.save(model)
    code, _, err = run_here(
        tmp_path, "recommend", "--model", str(model), "--user", "u3",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2, err
    assert str(model) in err and message in err and "Traceback" not in err


def test_recommend_bundle_matches_the_python_api(
    work: Path, implicit_model: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`rbmrec recommend` prints what ModelBundle.recommend returns (raw ids, scores)."""
    from rbmrec.bundle import ModelBundle

    code, out, err = run_here(
        work, "recommend", "--model", str(implicit_model), "--user", "u5", "-n", "4", "--json",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    recs = json.loads(out)["recommendations"]
    items, scores = ModelBundle.load(implicit_model).recommend("u5", N=4)
    assert [r["item_id"] for r in recs] == items.tolist()
    np.testing.assert_allclose([r["score"] for r in recs], scores, rtol=1e-6)


def test_models_option_takes_registry_names_and_aliases(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code, out, err = run_here(
        work, "evaluate", "--data", "ratings.csv", "--models", "global-mean,baseline,POP",
        "--validation-fraction", "0", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    for label in ("GlobalMean", "Bias", "Popularity"):
        assert f"| {label} |" in out
    code, _, err = run_here(
        work, "evaluate", "--data", "ratings.csv", "--models", "bias,svd",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2
    assert "--models: unknown model(s) 'svd'; choose from rating-rbm, implicit-rbm" in err


@pytest.mark.parametrize("quiet", [False, True])
def test_fit_off_a_terminal_prints_one_line_per_epoch_and_no_bar(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys, quiet: bool
) -> None:
    args = ["fit", "--data", "ratings.csv", "--model", "implicit-rbm", "--epochs", "3",
            "--n-hidden", "4", "--out", "m.npz"] + (["--quiet"] if quiet else [])  # fmt: skip
    code, _, err = run_here(work, *args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.strip().startswith("epoch ")]
    assert len(lines) == (0 if quiet else 6)  # ImplicitRBM() trains two RBMs
    if not quiet:
        assert lines[0].strip().startswith("epoch 1/3: ")


def _scale_csv(path: Path, values: np.ndarray) -> None:
    """A ratings table of 40 users x 12 items (half rated) with the given rating values."""
    rng = np.random.default_rng(3)
    lines = ["user_id,item_id,rating"]
    for u in range(40):
        for i in rng.choice(12, 6, replace=False):
            lines.append(f"u{u},{i},{rng.choice(values):g}")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("visible", ["softmax", "gaussian"])
def test_fit_keeps_explicit_zero_ratings(
    tmp_path: Path, visible: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A 0..4 scale (softmax) or a -10..10 scale in steps of 0.01 (gaussian): every 0 rating
    of the table is a stored entry of the bundle's seen matrix."""
    from rbmrec.bundle import ModelBundle
    from rbmrec.data import load_table

    values = np.arange(5.0) if visible == "softmax" else np.round(np.arange(-1000, 1001) / 100, 2)
    values = np.r_[values, np.zeros(200)]  # plenty of zeros on either scale
    _scale_csv(tmp_path / "r.csv", values)
    table = load_table(tmp_path / "r.csv")
    n_zero = int(np.count_nonzero(table.user_items.data == 0))
    assert n_zero > 0
    code, _, err = run_here(
        tmp_path, "fit", "--data", "r.csv", "--model", "rating-rbm", "--orientation", "user",
        "--visible", visible, *FAST, "--out", "m.npz", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    bundle = ModelBundle.load(tmp_path / "m.npz")
    assert bundle.model.visible == visible
    assert bundle.seen.nnz == table.n_ratings == 240
    assert int(np.count_nonzero(bundle.seen.data == 0)) == n_zero


def test_fit_points_a_fine_scale_to_visible_gaussian(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    _scale_csv(tmp_path / "r.csv", np.round(np.arange(-1000, 1001) / 100, 2))
    code, _, err = run_here(
        tmp_path, "fit", "--data", "r.csv", "--model", "rating-rbm", *FAST, "--out", "m.npz",
        monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "at most 127 rating levels" in err and "--visible gaussian" in err
    code, _, err = run_here(
        tmp_path, "fit", "--data", "r.csv", "--model", "implicit-rbm", "--visible", "gaussian",
        *FAST, "--out", "m.npz", monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 2 and "--visible applies only to --model rating-rbm" in err
