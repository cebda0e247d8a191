"""Round two of issue 18: functions named as text (a class's method, a script with
its arguments), the run's owner, grid order and the best iteration read by key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from catalog import (
    InvalidInput,
    get_catalog,
    get_dataitem,
    get_or_create_ctx,
    new_function,
    new_project,
    run_function,
    run_local,
)
from catalog.datastore import set_in_memory_item

CLASSES = """
class Scorer:
    def __init__(self, context=None, scale=1):
        self.context = context
        self.scale = scale

    def score(self, context, x=0):
        context.log_result("scaled", x * self.scale)
        context.log_result("got_context", self.context is context)


class Plain:
    def __init__(self, base=100):
        self.base = base

    def add(self, context, x=0):
        context.log_result("sum", self.base + x)
"""

SCRIPT = """
import sys

from catalog import get_or_create_ctx

ctx = get_or_create_ctx("script")
ctx.log_result("argv", " ".join(sys.argv[1:]))
ctx.log_result("rate", ctx.get_param("rate", 0) * 2)
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    path = tmp_path / "classes.py"
    path.write_text(textwrap.dedent(CLASSES))
    return path


def test_a_class_method_handler_makes_an_instance_per_run(code: Path) -> None:
    fn = new_function("scorer", command=str(code), kind="local")
    run = fn.run(handler="Scorer::score", params={"x": 4}, project="fns")
    assert run.status.results == {"scaled": 4, "got_context": True}
    again = run_function(
        fn, handler="Scorer::score", params={"x": 4, "_init_args": {"scale": 10}}, project="fns"
    )
    assert again.status.results["scaled"] == 40


def test_a_constructor_without_context_gets_only_its_init_args(code: Path) -> None:
    fn = new_function("plain", command=str(code))
    run = fn.run(handler="Plain::add", params={"x": 1, "_init_args": {"base": 1}}, local=True)
    assert run.status.results == {"sum": 2}


def test_a_class_handler_still_checks_the_method_arguments(code: Path) -> None:
    fn = new_function("scorer", command=str(code))
    with pytest.raises(InvalidInput, match="takes no parameter.*'y'"):
        fn.run(handler="Scorer::score", params={"y": 1}, project="fns")
    with pytest.raises(InvalidInput, match="no method 'nope'"):
        fn.run(handler="Scorer::nope", project="fns")
    with pytest.raises(InvalidInput, match="no handler 'Missing'"):
        fn.run(handler="Missing::score", project="fns")


def test_a_function_without_handler_runs_its_script_with_arguments(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    fn = new_function("job", command=f"{script} --rate {{rate}}", args=["one", "two"])
    run = fn.run(params={"rate": 7}, project="fns")
    assert run.status.state == "completed"
    assert run.status.results == {"argv": "--rate 7 one two", "rate": 14}


def test_a_script_placeholder_without_its_parameter_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    with pytest.raises(InvalidInput, match="placeholder 'rate'"):
        new_function("job", command=f"{script} --rate {{rate}}").run(project="fns")


def test_a_private_handler_names_its_run_without_the_underscore() -> None:
    def _prepare(context: object) -> None:
        pass

    assert run_local(handler=_prepare, project="fns").metadata.name == "prepare"


def test_a_run_owner_label_is_the_producer_owner() -> None:
    ctx = get_or_create_ctx("owned", project="owners", labels={"owner": "dana"})
    assert ctx.log_artifact("a", body=b"1").producer["owner"] == "dana"


def test_a_project_owner_is_the_producer_owner_unless_an_actor_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CATALOG_ACTOR", raising=False)
    project = new_project("owners")
    project.spec.owner = "lead"
    assert project.log_artifact("a", body=b"1").producer["owner"] == "lead"
    monkeypatch.setenv("CATALOG_ACTOR", "ci-bot")
    assert project.log_artifact("b", body=b"1").producer["owner"] == "ci-bot"


def grid(context: object, a: int = 0, b: int = 0) -> None:
    context.log_result("ab", f"{a}{b}")  # type: ignore[attr-defined]
    context.log_artifact("note", body=f"a={a} b={b}")  # type: ignore[attr-defined]
    context.log_result("score", a * 10 + b)  # type: ignore[attr-defined]


def test_the_grid_varies_the_first_parameter_fastest() -> None:
    run = run_local(handler=grid, hyperparams={"a": [1, 2], "b": [3, 4]}, project="grid")
    assert [row[4] for row in run.status.iterations[1:]] == ["13", "23", "14", "24"]


def test_a_param_file_in_memory() -> None:
    set_in_memory_item("grid-params.json", '{"a": [1, 2], "b": [5]}')
    run = run_local(handler=grid, param_file="memory://grid-params.json", project="grid")
    assert [row[4] for row in run.status.iterations[1:]] == ["15", "25"]
    with pytest.raises(InvalidInput, match="needs a key"):
        set_in_memory_item("", "x")


def test_a_key_read_without_iteration_gives_the_best_one() -> None:
    run = run_local(
        handler=grid, hyperparams={"a": [2, 9, 1], "b": [0]}, selector="max.score", project="grid"
    )
    assert run.output("best_iteration") == 2
    best = get_catalog().get_artifact("store://artifacts/grid/note")
    assert best.iter == 0 and best.spec.link_iteration == 2
    assert get_dataitem(best.uri).get() == b"a=9 b=0"
    pinned = get_catalog().get_artifact(run.outputs["note"])
    assert (pinned.iter, pinned.hash) == (2, best.hash)  # the same bytes, stored once
    assert new_project("grid").get_artifact("note").uid == best.uid
    # each iteration stays readable by its number
    assert get_dataitem("store://artifacts/grid/note#3").get() == b"a=1 b=0"


def test_a_local_run_is_labelled_with_its_kind() -> None:
    def kind_of_my_run() -> str:
        return str(get_or_create_ctx("inside").labels.get("kind"))

    run = run_local(handler=kind_of_my_run, project="fns", labels={"team": "ml"})
    assert run.output("return") == "local"
    assert run.to_dict()["metadata"]["labels"] == {"kind": "local", "team": "ml"}


def fetch(context: object, n: int = 1) -> None:
    context.log_result("rows", n * 10)  # type: ignore[attr-defined]


def test_a_project_lists_its_runs_with_filters(capsys: pytest.CaptureFixture[str]) -> None:
    first = run_local(handler=fetch, params={"n": 2}, project="listing", labels={"owner": "ops"})
    run_local(handler=fetch, params={"n": 3}, project="listing")
    run_local(handler=grid, project="listing")
    project = new_project("listing")
    assert [r["name"] for r in project.list_runs()] == ["grid", "fetch", "fetch"]
    owned = project.list_runs(name="~FET", labels="owner=ops")
    assert [r["uid"] for r in owned] == [first.uid]
    assert len(project.list_runs(labels=["kind=local", "owner"])) == 1
    assert len(project.list_runs(state="completed", last=2)) == 2
    table = project.list_runs(name="fetch").to_df()
    assert table["result.rows"].tolist() == [30, 20] and table["param.n"].tolist() == [3, 2]
    owned.compare()
    assert "result.rows" in capsys.readouterr().out
    with pytest.raises(InvalidInput, match="label filter"):
        project.list_runs(labels=[""])


def test_project_secrets_are_recorded_and_remote_projects_refused() -> None:
    project = new_project("listing")
    project.with_secrets("env", "A,B", prefix="X_").with_secrets("inline", {"k": "v"})
    assert [s["kind"] for s in project.spec.secret_sources] == ["env", "inline"]
    from catalog import get_or_create_project, load_project

    with pytest.raises(InvalidInput, match="cloning a git repository"):
        load_project("./here", "git://github.com/org/repo.git")
    with pytest.raises(InvalidInput, match="cloning a git repository"):
        get_or_create_project("other", "./", "git://github.com/org/repo.git")
