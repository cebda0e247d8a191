"""Runs and projects through the module-level API: run_local, MLClientCtx, RunObject,
set_environment, new_project / get_or_create_project, and the artifact-path order.

Every test starts and ends with ``mlconf.reset()`` (the module API shares one
process-wide client) and, through conftest, has its own ``CATALOG_HOME``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pytest

from catalog import (
    ArtifactNotFound,
    DataItem,
    InvalidInput,
    MLClientCtx,
    Project,
    RunObject,
    get_catalog,
    get_dataitem,
    get_or_create_project,
    get_run,
    mlconf,
    new_project,
    run_local,
    set_environment,
)
from catalog.errors import RunNotFound


@pytest.fixture(autouse=True)
def fresh_mlconf() -> Iterator[None]:
    """A fresh process-wide client, its projection kept open for the test (speed).

    Tests that change ``mlconf`` get a new client, which reads the usual way.
    """
    mlconf.reset()
    with get_catalog().session():
        yield
    mlconf.reset()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def csv_file(tmp_path: Path) -> str:
    path = tmp_path / "input.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_csv(path, index=False)
    return str(path)


def runs() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        get_catalog().sql("SELECT * FROM runs ORDER BY started").to_pylist()
    )
    return rows


def artifact_count() -> int:
    return int(get_catalog().sql("SELECT count(*) AS n FROM artifacts").to_pylist()[0]["n"])


def store_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# ------------------------------------------------------------------- runs


def test_run_object_and_the_runs_table(csv_file: str) -> None:
    def train(context: MLClientCtx, data: DataItem, rate: float = 0.1) -> dict[str, Any]:
        df = data.as_df()
        context.log_result("rows", len(df))
        context.log_dataset("doubled", df=df.assign(a=df.a * 2))
        return {"rate": rate}

    run = run_local(
        handler=train,
        name="train",
        inputs={"data": csv_file},
        params={"rate": 0.5},
        project="runs",
        labels={"owner": "ana"},
    )
    assert isinstance(run, RunObject) and run.state() == "completed"
    assert len(run.uid) == 32
    out = run.output("doubled")
    assert out.startswith("store://datasets/runs/doubled^")
    # a returned dict: its keys as results, and the whole as MLRun's result "return"
    assert run.outputs == {"rows": 3, "rate": 0.5, "return": {"rate": 0.5}, "doubled": out}
    assert run.output("rows") == 3
    item = run.artifact("doubled")
    assert isinstance(item, DataItem) and item.as_df()["a"].tolist() == [2, 4, 6]
    doc = run.to_dict()
    assert doc["metadata"] == {
        "name": "train",
        "project": "runs",
        "uid": run.uid,
        "labels": {"kind": "local", "owner": "ana"},  # a local run's kind, as in MLRun
    }
    assert doc["spec"]["parameters"] == {"rate": 0.5}
    assert doc["spec"]["inputs"] == {"data": csv_file}
    assert doc["status"] == {
        "state": "completed",
        "results": {"rows": 3, "rate": 0.5, "return": {"rate": 0.5}},
        "outputs": {"doubled": out},
    }
    assert run.metadata.uid == run.uid

    (row,) = runs()
    assert row["uid"] == run.uid and row["name"] == "train" and row["state"] == "completed"
    assert row["error"] is None and row["finished"] is not None
    assert row["handler"].endswith(":test_run_object_and_the_runs_table.<locals>.train")
    assert dict(row["labels"]) == {"kind": "local", "owner": "ana"}
    assert json.loads(row["parameters"]) == {"rate": 0.5}
    assert json.loads(row["results"]) == {"rows": 3, "rate": 0.5, "return": {"rate": 0.5}}
    assert dict(row["outputs"]) == {"doubled": out}
    (inp,) = json.loads(row["inputs"])
    assert inp["name"] == "data" and inp["url"] == csv_file and len(inp["hash"]) == 64
    events = (
        get_catalog()
        .sql(f"SELECT type, run_uid FROM events WHERE key = '{run.uid}' ORDER BY \"offset\"")
        .to_pylist()
    )
    assert [e["type"] for e in events] == ["RunStarted", "RunFinished"]

    recorded = get_run(run.uid, project="runs")
    assert recorded["state"] == "completed" and recorded["results"]["rate"] == 0.5
    with pytest.raises(RunNotFound):
        get_run("0" * 32, project="runs")
    with pytest.raises(InvalidInput, match="no output 'nope'"):
        run.output("nope")
    with pytest.raises(InvalidInput, match="logged no artifact 'rows'"):
        run.artifact("rows")


def test_a_failing_handler_is_recorded_as_error_and_re_raised() -> None:
    def broken(context: MLClientCtx) -> None:
        context.log_result("progress", 1)
        context.log_artifact("partial", body=b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_local(handler=broken, project="runs")
    (row,) = runs()
    assert row["state"] == "error" and row["name"] == "broken"
    assert row["error"] == "RuntimeError: disk on fire"
    assert json.loads(row["results"]) == {"progress": 1}
    assert list(dict(row["outputs"])) == ["partial"]  # what it logged before failing stays
    types = get_catalog().sql(f"SELECT type FROM events WHERE key = '{row['uid']}'").to_pylist()
    assert sorted(t["type"] for t in types) == ["RunFinished", "RunStarted"]


def test_handler_arguments_are_filled_by_name(csv_file: str) -> None:
    seen: dict[str, Any] = {}

    def handler(ctx: MLClientCtx, url: str, item: DataItem, plain, n: int = 1, m: int = 2):
        seen.update(ctx=ctx, url=url, item=item, plain=plain, n=n, m=m)

    run_local(
        handler=handler,
        inputs={"url": csv_file, "item": csv_file, "plain": csv_file},
        params={"n": 5},
        project="runs",
    )
    assert isinstance(seen["ctx"], MLClientCtx)
    assert seen["url"] == csv_file  # annotated str: the URL
    assert isinstance(seen["item"], DataItem) and isinstance(seen["plain"], DataItem)
    assert seen["item"].get() == Path(csv_file).read_bytes()
    assert (seen["n"], seen["m"]) == (5, 2)

    def catch_all(context, **kwargs: Any) -> None:
        seen["kwargs"] = kwargs

    run_local(handler=catch_all, params={"x": 1}, inputs={"d": csv_file}, project="runs")
    assert seen["kwargs"]["x"] == 1 and isinstance(seen["kwargs"]["d"], DataItem)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"params": {"rate": 1, "colour": "red"}}, "takes no parameter(s) 'colour'"),
        ({"params": {}}, "needs 'rate'"),
        (
            {"params": {"rate": 1}, "inputs": {"data": "/no/such/file.csv"}},
            "input 'data': /no/such/file.csv does not exist",
        ),
        (
            {"params": {"rate": 1}, "inputs": {"data": "memory://nowhere/x.csv"}},
            "input 'data': memory://nowhere/x.csv cannot be read",
        ),
        (
            {"params": {"rate": 1}, "inputs": {"data": "store://datasets/runs/missing"}},
            "store://datasets/runs/missing",
        ),
        ({"params": {"rate": 1}, "inputs": {"data": 42}}, "input 'data' must be a URI"),
    ],
    ids=[
        "unknown-param",
        "missing-param",
        "missing-file",
        "missing-url",
        "missing-artifact",
        "not-a-url",
    ],
)
def test_bad_run_input_is_named_recorded_as_error_and_logs_nothing(
    kwargs: dict[str, Any], message: str
) -> None:
    called = []

    def handler(context: MLClientCtx, rate: int, data: DataItem | None = None) -> None:
        called.append(1)
        context.log_artifact("never", body=b"x")

    with pytest.raises((InvalidInput, ArtifactNotFound)) as info:
        run_local(handler=handler, name="bad", project="runs", **kwargs)
    assert message in str(info.value)
    assert not called
    assert artifact_count() == 0
    (row,) = runs()
    assert row["name"] == "bad" and row["state"] == "error"
    assert message in row["error"]


def test_handler_must_be_a_function() -> None:
    with pytest.raises(InvalidInput, match="needs handler="):
        run_local(handler=None, project="runs")


# ------------------------------------------------------------------ inputs


def test_inputs_accept_paths_urls_and_store_uris(csv_file: str) -> None:
    with fsspec.open("memory://sdk-runs/in.csv", "w") as fh:
        fh.write("a,b\n7,8\n")
    project = new_project("runs")
    logged = project.log_dataset("table", df=pd.DataFrame({"a": [5], "b": [6]}))
    got: dict[str, list[int]] = {}

    def read(context: MLClientCtx, local: DataItem, remote: DataItem, stored: DataItem) -> None:
        for name, item in (("local", local), ("remote", remote), ("stored", stored)):
            got[name] = item.as_df()["a"].tolist()

    run = run_local(
        handler=read,
        inputs={"local": csv_file, "remote": "memory://sdk-runs/in.csv", "stored": logged},
        project="runs",
    )
    assert got == {"local": [1, 2, 3], "remote": [7], "stored": [5]}
    inputs = {i["name"]: i for i in json.loads(runs()[0]["inputs"])}
    assert inputs["remote"]["url"] == "memory://sdk-runs/in.csv"
    assert inputs["stored"]["uid"] == logged.uid and inputs["stored"]["hash"] == logged.hash
    assert run.to_dict()["spec"]["inputs"]["stored"] == logged.uri


def test_a_store_input_is_pinned_to_the_version_its_tag_named_then() -> None:
    project = new_project("runs")
    v1 = project.log_dataset("raw", df=pd.DataFrame({"x": [1, 2]}), tag="prod")
    v2 = project.log_dataset("raw", df=pd.DataFrame({"x": [3, 4]}))

    def clean(context: MLClientCtx, data: DataItem) -> None:
        context.log_dataset("clean", df=data.as_df() * 10)

    run = run_local(
        handler=clean, inputs={"data": "store://datasets/runs/raw:prod"}, project="runs"
    )
    get_catalog().tag_artifact(v2.uri, "prod")  # the tag moves after the run
    assert project.get_artifact("raw", tag="prod").uid == v2.uid

    out = run.artifact("clean")
    assert out.as_df()["x"].tolist() == [10, 20]  # it read v1
    (source,) = get_catalog().get_artifact(out.meta.uri).spec.sources
    assert source["uid"] == v1.uid and source["hash"] == v1.hash
    assert source["uri"] == "store://datasets/runs/raw:prod"  # as asked for
    (edge,) = get_catalog().lineage(out.meta.uri)
    assert (edge["parent_key"], edge["parent_uid"]) == ("raw", v1.uid)
    (inp,) = json.loads(runs()[0]["inputs"])
    assert inp["uid"] == v1.uid and inp["url"] == "store://datasets/runs/raw:prod"
    downstream = get_catalog().lineage(v1.uri, direction="downstream")
    assert [e["key"] for e in downstream] == ["clean"]
    assert get_catalog().lineage(v2.uri, direction="downstream") == []


# ----------------------------------------------------------------- context


def test_context_api_and_producer_of_everything_logged(
    csv_file: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = str(tmp_path / "jobs")
    captured: dict[str, Any] = {}

    def job(context: MLClientCtx, data: DataItem, alpha: float = 0.0) -> None:
        context.logger.info("working in %s", context.artifact_path)
        context.log_results({"a": 1, "b": [1, 2]})
        context.log_result("c", 2.5)
        captured.update(
            uid=context.uid,
            project=context.project,
            labels=dict(context.labels),
            param=context.get_param("alpha"),
            default=context.get_param("missing", "dflt"),
            path=context.artifact_path,
            sub=context.artifact_subpath("models", "v1"),
        )
        context.log_artifact("file", body=b"bytes", labels={"k": "v"})
        context.log_dataset("ds", df=pd.DataFrame({"x": [1]}))
        context.log_model("model", body=b"weights", framework="none")

    with caplog.at_level(logging.INFO):
        run = run_local(
            handler=job,
            inputs={"data": csv_file},
            params={"alpha": 0.3},
            project="runs",
            labels={"team": "ml"},
            artifact_path=jobs,
        )
    assert captured["uid"] == run.uid and captured["project"] == "runs"
    assert captured["labels"] == {"kind": "local", "team": "ml"}
    assert (captured["param"], captured["default"]) == (0.3, "dflt")
    assert captured["path"] == jobs
    assert captured["sub"] == f"{jobs}/models/v1"
    assert f"working in {jobs}" in caplog.text
    assert run.outputs["b"] == [1, 2] and run.outputs["c"] == 2.5

    for key in ("file", "ds", "model"):
        art = get_catalog().get_artifact(run.outputs[key])
        assert art.spec.producer == {
            "kind": "run",
            "name": "job",
            "uri": f"runs/{run.uid}",
            "owner": get_catalog().config.actor,
        }
        assert art.tree == run.uid
        assert [(s["name"], s["uri"]) for s in art.spec.sources] == [("data", csv_file)]
    assert get_catalog().get_artifact(run.outputs["file"]).labels == {"k": "v"}
    # the run's artifacts tab: every version the run produced
    produced = get_catalog().list_artifacts(project="runs", producer=run.uid)
    assert sorted(a.key for a in produced) == ["ds", "file", "model"]


def test_log_result_refuses_bad_keys() -> None:
    def job(context: MLClientCtx) -> None:
        context.log_result("bad key!", 1)

    with pytest.raises(InvalidInput):
        run_local(handler=job, project="runs")
    assert runs()[0]["state"] == "error"


# ------------------------------------------------------------ artifact path


def test_artifact_path_order_call_run_project_client_env_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: dict[str, str] = {}

    def job(context: MLClientCtx) -> None:
        for name, path in (("call", str(tmp_path / "call")), ("run", None)):
            art = context.log_artifact(f"{name}-art", body=name.encode(), artifact_path=path)
            where[name] = art.target_path

    def root_of(target: str) -> str:
        return target.split("/objects/sha256/")[0]

    home = Path(get_catalog().config.artifact_path.replace("{{project}}", "p"))
    assert get_catalog().artifact_path("p") == str(home)  # the documented default
    assert str(home).startswith(str(tmp_path.parent))  # under CATALOG_HOME

    config = tmp_path / "config.toml"
    from_file = str(tmp_path / "file") + "/{{project}}"
    config.write_text(f'artifact_path = "{from_file}"\n')
    monkeypatch.setenv("CATALOG_CONFIG", str(config))
    assert get_catalog().artifact_path("p") == str(tmp_path / "file" / "p")  # config file

    # argument > environment > config file > default (a job's environment wins)
    monkeypatch.setenv("CATALOG_ARTIFACT_PATH", str(tmp_path / "env" / "{{project}}"))
    assert get_catalog().artifact_path("p") == str(tmp_path / "env" / "p")
    config.write_text("")
    monkeypatch.setenv("CATALOG_CONFIG", str(config) + ".none")  # no file: the env applies
    assert get_catalog().artifact_path("p") == str(tmp_path / "env" / "p")

    mlconf.artifact_path = str(tmp_path / "client" / "{{project}}")
    assert get_catalog().artifact_path("p") == str(tmp_path / "client" / "p")

    new_project("p", artifact_path=str(tmp_path / "project"))
    assert get_catalog().artifact_path("p") == str(tmp_path / "project")
    assert get_catalog().artifact_path("other") == str(tmp_path / "client" / "other")

    run_local(handler=job, project="p", artifact_path=str(tmp_path / "run"))
    assert root_of(where["call"]) == str(tmp_path / "call")
    assert root_of(where["run"]) == str(tmp_path / "run")

    run_local(handler=job, project="p")
    assert root_of(where["run"]) == str(tmp_path / "project")


def test_templates_relative_paths_and_extensions(workdir: Path) -> None:
    new_project("p", artifact_path=str(workdir / "base"))
    where: dict[str, str] = {}

    def job(context: MLClientCtx) -> None:
        where["ctx"] = context.artifact_path
        where["plus"] = context.log_artifact("a", body=b"1", artifact_path="+/extra").target_path

    run = run_local(handler=job, project="p", artifact_path="runs/{{project}}/{{run.uid}}")
    assert where["ctx"] == str(workdir / "runs" / "p" / run.uid)  # relative → absolute
    assert where["plus"].startswith(str(workdir / "runs" / "p" / run.uid / "extra") + "/")

    run = run_local(handler=job, project="p", artifact_path="+/jobs")
    assert where["ctx"] == str(workdir / "base" / "jobs")  # extends the project's path

    art = get_catalog().log_artifact("b", body=b"2", project="p", artifact_path="+/direct")
    assert art.target_path.startswith(str(workdir / "base" / "direct") + "/")


def test_run_uid_template_in_an_extending_run_path(workdir: Path) -> None:
    new_project("p", artifact_path=str(workdir / "base"))
    seen: dict[str, str] = {}
    run = run_local(
        handler=lambda context: seen.update(path=context.artifact_path),
        name="job",
        project="p",
        artifact_path="+/runs/{{run.uid}}",
    )
    assert seen["path"] == str(workdir / "base" / "runs" / run.uid)


def test_fsspec_urls_work_as_artifact_paths() -> None:
    set_environment(project="mem", artifact_path="memory://sdk-bucket/{{project}}")

    def job(context: MLClientCtx) -> None:
        context.log_dataset("ds", df=pd.DataFrame({"x": [1, 2]}), format="csv")

    run = run_local(handler=job, project="mem")
    item = run.artifact("ds")
    assert item.meta.target_path.startswith("memory://sdk-bucket/mem/objects/sha256/")
    assert item.as_df()["x"].tolist() == [1, 2]
    assert Path(item.local()).read_bytes() == item.get()


# -------------------------------------------------------- set_environment


def test_set_environment_records_a_project_configured_event(workdir: Path) -> None:
    name, path = set_environment(project="envp", artifact_path="./art")
    assert (name, path) == ("envp", str(workdir / "art"))
    assert mlconf.default_project == "envp" and mlconf.artifact_path == str(workdir / "art")
    events = (
        get_catalog()
        .sql("SELECT type, project, payload FROM events WHERE type = 'ProjectConfigured'")
        .to_pylist()
    )
    assert len(events) == 1 and events[0]["project"] == "envp"
    assert json.loads(events[0]["payload"])["artifact_path"] == str(workdir / "art")
    # a later client (another session) still knows the project's path
    mlconf.reset()
    assert get_catalog().artifact_path("envp") == str(workdir / "art")
    assert set_environment(project="envp") == ("envp", str(workdir / "art"))


def test_set_environment_templates_name_each_project(workdir: Path) -> None:
    assert set_environment(project="one", artifact_path="./art/{{project}}") == (
        "one",
        str(workdir / "art" / "one"),
    )
    # the client default keeps the template, so another project gets its own directory
    other = new_project("two")
    assert other.log_artifact("k", body=b"v").target_path.startswith(
        str(workdir / "art" / "two") + "/"
    )
    assert other.artifact_path == str(workdir / "art" / "two")


def test_set_environment_with_an_extending_path(workdir: Path) -> None:
    mlconf.artifact_path = str(workdir / "client" / "{{project}}")
    assert set_environment(project="ext", artifact_path="+/mine") == (
        "ext",
        str(workdir / "client" / "ext" / "mine"),
    )
    art = get_catalog().log_artifact("k", body=b"v", project="ext")
    assert art.target_path.startswith(str(workdir / "client" / "ext" / "mine") + "/")


def test_set_environment_refuses_a_bad_project_name() -> None:
    with pytest.raises(InvalidInput):
        set_environment(project="Not A Name")


def test_mlconf_dbpath_names_the_catalog_service(monkeypatch: pytest.MonkeyPatch) -> None:
    before = get_catalog()
    assert before.config.api == "" and mlconf.dbpath == ""
    mlconf.hub_url = "anything"
    mlconf.dbpath = "/some/local/mlrun.db"  # MLRun's local-database form: not a service
    assert get_catalog() is before
    assert mlconf.not_set == ""
    # an http(s) URL is the service reads go to (nothing is contacted until a read)
    mlconf.dbpath = mlconf.dbpath if mlconf.dbpath.startswith("http") else "http://127.0.0.1:1"
    assert get_catalog() is not before and get_catalog().config.api == "http://127.0.0.1:1"
    mlconf.reset()
    # unset, it is CATALOG_API (as MLRun's is MLRUN_DBPATH): the seed's
    # `mlconf.dbpath = mlconf.dbpath or "http://mlrun-api:8080"` keeps a job's service
    monkeypatch.setenv("CATALOG_API", "http://127.0.0.1:2")
    assert mlconf.dbpath == "http://127.0.0.1:2"
    assert get_catalog().config.api == "http://127.0.0.1:2"


# ---------------------------------------------------------------- projects


def test_project_object_operations(workdir: Path) -> None:
    project = new_project("proj-ops", str(workdir / "ctx"), description="demo")
    assert isinstance(project, Project) and (workdir / "ctx").is_dir()
    assert not (workdir / "ctx" / ".git").exists()  # no init_git
    a = project.log_artifact("notes", body="hello", labels={"k": "v"}, tag="v1")
    d = project.log_dataset("table", df=pd.DataFrame({"x": [1, 2]}), tag="v1")
    m = project.log_model("clf", body=b"weights", metrics={"acc": 0.5})
    assert (a.kind, d.kind, m.kind) == ("artifact", "dataset", "model")
    assert {x.key for x in project.list_artifacts()} == {"notes", "table", "clf"}
    assert [x.key for x in project.list_artifacts(labels={"k": "v"})] == ["notes"]
    assert [x.key for x in project.list_artifacts(tag="v1", kind="dataset")] == ["table"]
    assert project.get_artifact("table", tag="v1").uid == d.uid
    assert project.get_artifact_uri("clf", category="models") == "store://models/proj-ops/clf"
    assert project.get_artifact_uri("t", category="datasets", tag="v1", iter=2) == (
        "store://datasets/proj-ops/t#2:v1"
    )
    assert get_dataitem(project.get_artifact_uri("table", "datasets", "v1")).meta.uid == d.uid
    run = project.run(lambda context: context.log_result("ok", True), name="quick")
    assert run.outputs == {"ok": True} and run.to_dict()["metadata"]["project"] == "proj-ops"
    project.artifact_path = "./elsewhere"
    assert project.artifact_path == str(workdir / "elsewhere")
    with pytest.raises(ArtifactNotFound):
        project.get_artifact("nope")


def test_get_or_create_project_creates_once(tmp_path: Path) -> None:
    first = get_or_create_project("gocp", artifact_path=str(tmp_path / "art"))
    second = get_or_create_project("gocp", artifact_path=str(tmp_path / "ignored"))
    assert first.name == second.name == "gocp"
    assert second.artifact_path == str(tmp_path / "art")
    configured = (
        get_catalog()
        .sql("SELECT count(*) AS n FROM events WHERE type = 'ProjectConfigured'")
        .to_pylist()
    )
    assert configured == [{"n": 1}]
