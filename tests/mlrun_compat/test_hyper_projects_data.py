"""Items 4, 5 and 6: project manifests, hyper-parameter iterations, writable DataItems."""

from __future__ import annotations

import json

import pytest

from catalog import (
    InvalidInput,
    get_catalog,
    get_dataitem,
    load_project,
    new_function,
    new_project,
    new_task,
    run_local,
)
from catalog.artifacts import Artifact


def hyper(context: object, p1: int = 1, p2: int = 1) -> None:
    context.log_result("score", p1 * p2)  # type: ignore[attr-defined]
    context.log_artifact("out", body=f"{p1}x{p2}")  # type: ignore[attr-defined]


def test_grid_iterations_choose_the_best() -> None:
    run = run_local(
        handler=hyper, hyperparams={"p1": [1, 3], "p2": [2, 1]}, selector="max.score", project="hp"
    )
    header, *rows = run.status.iterations
    assert header == ["state", "iter", "param.p1", "param.p2", "output.score"]
    # MLRun's grid order: the first parameter varies fastest
    assert [(r[2], r[3]) for r in rows] == [(1, 2), (3, 2), (1, 1), (3, 1)]
    assert [r[4] for r in rows] == [2, 6, 1, 3]
    assert run.output("best_iteration") == 2 and run.output("score") == 6
    best = get_catalog().get_artifact(run.outputs["out"])
    assert (best.iter, get_dataitem(best.uri).get()) == (2, b"3x2")
    assert get_catalog().get_artifact("store://artifacts/hp/out#1").iter == 1
    table = run.artifact("iteration_results").as_df()
    assert table["output.score"].tolist() == [2, 6, 1, 3]
    runs = get_catalog().sql("SELECT count(*) AS n FROM runs WHERE project = 'hp'").to_pylist()
    assert runs == [{"n": 1}]  # one run, four iterations


def test_task_list_strategy_stop_condition_and_param_file(tmp_path: object) -> None:
    task = new_task(params={"p2": 10}).with_hyper_params(
        {"p1": [1, 5, 9]}, selector="min.score", strategy="list", stop_condition="score>=50"
    )
    run = new_function().run(task, handler=hyper, project="hp")
    assert len(run.status.iterations) == 3  # stopped after the second iteration
    assert run.output("best_iteration") == 1
    with open("params.json", "w") as fh:
        json.dump({"p1": [2, 4]}, fh)
    run = run_local(new_task(param_file="params.json", selector="score"), handler=hyper)
    assert run.output("best_iteration") == 2


def test_custom_iterations_with_child_contexts() -> None:
    def loop(context: object) -> None:
        for value in (3, 7, 5):
            with context.get_child_context(v=value) as child:  # type: ignore[attr-defined]
                child.log_result("v", value)
                if value == 7:
                    child.mark_as_best()

    run = run_local(handler=loop, project="hp")
    assert run.output("best_iteration") == 2 and len(run.status.iterations) == 4


def test_bad_hyper_parameters_write_nothing() -> None:
    before = get_catalog().log_end()
    with pytest.raises(InvalidInput, match="same length"):
        run_local(handler=hyper, hyperparams={"p1": [1, 2], "p2": [1]}, selector="score",
                  hyper_param_options={"strategy": "list"})  # fmt: skip
    with pytest.raises(InvalidInput, match="strategy"):
        run_local(handler=hyper, hyperparams={"p1": [1]}, hyper_param_options={"strategy": "x"})
    assert get_catalog().log_end() == before


def test_project_manifest_register_save_and_load() -> None:
    project = new_project("manifest", "ctx")
    project.set_artifact("readme", artifact=Artifact("readme", body=b"# hi"), tag="v1")
    with open("ctx/data.txt", "w") as fh:  # a relative path is in the project's context
        fh.write("data")
    project.set_artifact("data", target_path="data.txt")
    logged = {a.key: a for a in project.register_artifacts()}
    assert logged["readme"].tag == "v1" and logged["readme"].tree == logged["data"].tree
    assert logged["data"].producer["kind"] == "project"
    project.save()
    again = load_project("ctx")
    assert [e["key"] for e in again.spec.artifacts] == ["readme", "data"]
    with pytest.raises(InvalidInput, match="needs one of"):
        project.set_artifact("nothing")


def test_export_import_and_delete() -> None:
    project = new_project("manifest")
    art = project.log_artifact("x", body="123")
    art.export("x.yaml")
    copy = project.import_artifact("x.yaml", new_key="y")
    assert (copy.key, copy.hash) == ("y", art.hash)
    assert project.delete_artifact("y") == [copy.uid]
    with pytest.raises(InvalidInput, match="metadata-only"):
        project.delete_artifact("x", deletion_strategy="data-force")


def test_dataitem_writes_plain_urls(tmp_path: object) -> None:
    for url in ("plain.txt", "file://" + str(tmp_path) + "/f.txt", "memory://compat/m.txt"):
        item = get_dataitem(url)
        item.put("abc")
        item.put(b"def", append=True)
        assert item.get() == b"abcdef" and item.stat().size == 6
        item.delete()
        item.delete()  # gone already: nothing to do
    with open("src.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    target = get_dataitem("memory://compat/up.bin")
    target.upload("src.bin")
    assert target.get() == b"\x00\x01"


def test_catalog_versions_are_read_only() -> None:
    art = new_project("manifest").log_artifact("v", body=b"1")
    item = get_dataitem(art.uri)
    for action in (lambda: item.put(b"2"), lambda: item.upload("x"), item.delete):
        with pytest.raises(InvalidInput, match="immutable"):
            action()
    assert item.get() == b"1"
