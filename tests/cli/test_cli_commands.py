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


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m rbmrec *args`` with no real data visible; returns the finished process."""
    env = dict(os.environ)
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


def test_fit_writes_model_and_id_sidecars(rating_model: Path) -> None:
    assert rating_model.is_file()
    doc = json.loads(Path(str(rating_model) + ".ids.json").read_text())
    assert doc["user_ids"][:2] == ["u0", "u1"]
    assert len(doc["item_ids"]) == len(doc["titles"]) == 40
    assert doc["titles"][doc["item_ids"].index(100)] == "Movie 100"
    assert Path(str(rating_model) + ".seen.npz").is_file()


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
    return res, json.loads(res.stdout[res.stdout.index("{") :])["recommendations"]


@pytest.mark.parametrize("which", ["rating", "implicit"])
def test_recommend_fold_in_new_user(work: Path, which: str, request) -> None:
    model = request.getfixturevalue(f"{which}_model")
    res, recs = _fold_in_top3(model, work)
    assert len(recs) == 3
    assert not {100, 101} & {r["item_id"] for r in recs}
    assert "999" in res.stdout  # the unknown item is reported, not fatal


def test_fold_in_with_the_default_both_model(work: Path) -> None:
    """`rbmrec fit` without --orientation gives the "both" model; fold-in uses its user part."""
    import rbmrec

    out = work / "both_rbm.npz"
    res = run("fit", "--data", "ratings.csv", *FAST, "--out", str(out), cwd=work)
    assert res.returncode == 0, res.stderr
    model = rbmrec.load(out)
    assert model.orientation == "both" and set(model.members_) == {"item", "user"}
    _, recs = _fold_in_top3(out, work)
    assert len(recs) == 3 and not {100, 101} & {r["item_id"] for r in recs}
    res = run("recommend", "--model", str(out), "--user", "u3", "-n", "4", "--json", cwd=work)
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["recommendations"]) == 4


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

    import rbmrec

    out = work / f"interrupted-{model}.npz"
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    env.pop("RBMREC_DATA_DIR", None)
    with open(work / "fit.err", "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "rbmrec", "fit", "--data", "ratings.csv",
                "--model", model, "--epochs", "100000", "--n-hidden", "8",
                "--threads", "1", "--out", str(out),
            ],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while "epochs:" not in (work / "fit.err").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # a few epochs in
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, (work / "fit.err").read_text()
    assert "model written to" in stdout
    assert out.is_file() and Path(str(out) + ".ids.json").is_file()
    if model == "rating-rbm":
        fitted = rbmrec.load(out)
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

    monkeypatch.setattr(cli, "_cmd_datasets", boom)
    assert cli.main(["datasets", "list"]) == 1
    err = capsys.readouterr().err
    assert "kaboom" in err and "unexpected" in err


def test_compile_note_only_while_kernels_are_not_cached(
    work: Path, rating_model: Path, implicit_model: Path, tmp_path: Path, capsys
) -> None:
    """The first-run note looks where Numba writes its cache, and only for the RBMs."""
    from rbmrec import cli

    # The fixtures' `rbmrec fit` runs compiled both RBMs into the cache this process uses.
    assert cli._uncompiled(["rbm", "irbm", "als", "bias"]) == []
    cli._compile_note(["rbm", "irbm"])
    assert capsys.readouterr().err == ""
    # A fresh cache folder: both RBMs would compile (checked in a new process, since Numba
    # reads NUMBA_CACHE_DIR at import).
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    code = "from rbmrec import cli; cli._compile_note(['rbm', 'irbm', 'pop'])"
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "first run of RatingRBM and ImplicitRBM" in res.stderr
    assert "Popularity" not in res.stderr
