"""The update path: a project rendered by an earlier commit of this template takes
the current commit's changes with `cruft update`, keeps its owner's edits, and
reports a conflicting edit (conflict markers or a reject) instead of overwriting it."""

from __future__ import annotations

import filecmp
import json
import os
import re
from pathlib import Path

import pytest

from .support.commands import run
from .support.paths import BIN, TEMPLATE
from .support.rendering import cookiecutter
from .support.template_files import shell_block, tree_of

# The earliest commit whose hooks run under cruft (which renders without _repo_dir).
EARLIER_COMMIT = "c82af29ce8f99fa293a46304bf7bf0fca84273ff"
USER_LINE = "# kept by the team: our own note\n"
CONFLICTING_LINE = "# the team rewrote this line\n"


# Checks skipped, as a team's CI would; commits by a known author.
ENVIRONMENT = os.environ | {
    "HIGHCONCURRENCY_SKIP_CHECKS": "1",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def succeed(command: list[str], cwd: Path) -> str:
    """The command's output; it must pass."""
    result = run(command, cwd, ENVIRONMENT)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def rendered(output: Path, *arguments: str, template: Path = TEMPLATE) -> Path:
    """`cookiecutter <template> --output-dir <output> <arguments>`; the project."""
    result = cookiecutter(output, *arguments, env=ENVIRONMENT, template=template)
    assert result.returncode == 0, f"{arguments}:\n{result.stdout}\n{result.stderr}"
    (project,) = output.iterdir()
    return project


def render(template: Path, commit: str, output: Path) -> Path:
    succeed(["git", "checkout", "--quiet", commit], template)
    return rendered(output, "--no-input", template=template)


def differing_files(old: Path, new: Path) -> tuple[list[str], list[str]]:
    """(files in both with different content, files identical in both)."""
    changed: list[str] = []
    same: list[str] = []
    for path in sorted(new.rglob("*")):
        relative = path.relative_to(new)
        if path.is_file() and (old / relative).is_file():
            equal = filecmp.cmp(path, old / relative, shallow=False)
            (same if equal else changed).append(str(relative))
    return changed, same


def first_changed_line(old: Path, new: Path) -> int:
    old_lines, new_lines = old.read_text().splitlines(), new.read_text().splitlines()
    for number, (before, after) in enumerate(zip(old_lines, new_lines, strict=False)):
        if before != after:
            return number
    return min(len(old_lines), len(new_lines)) - 1


@pytest.fixture
def template_clone(tmp_path: Path) -> tuple[Path, str]:
    """A clone of this repository and the name of its current branch."""
    clone = tmp_path / "template"
    succeed(["git", "clone", "--quiet", str(TEMPLATE), str(clone)], tmp_path)
    if succeed(["git", "cat-file", "-t", EARLIER_COMMIT], clone).strip() != "commit":
        pytest.fail(f"{EARLIER_COMMIT} is not in this clone's history")
    return clone, succeed(["git", "symbolic-ref", "--short", "HEAD"], clone).strip()


def test_update_brings_template_changes_and_keeps_user_edits(
    tmp_path: Path, template_clone: tuple[Path, str]
) -> None:
    clone, branch = template_clone
    current = succeed(["git", "rev-parse", "HEAD"], clone).strip()
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old_render = render(clone, EARLIER_COMMIT, tmp_path / "old")
    new_render = render(clone, branch, tmp_path / "new")
    changed, same = differing_files(old_render, new_render)
    changed = [name for name in changed if name.endswith((".py", ".md", ".yaml", "Makefile"))]
    assert changed, "the current commit changes no file of the default render"

    # A project created by the earlier commit, as the README says, then committed.
    (tmp_path / "user").mkdir()
    succeed(
        [
            str(BIN / "cruft"),
            "create",
            str(clone),
            "--checkout",
            EARLIER_COMMIT,
            "--no-input",
            "--output-dir",
            str(tmp_path / "user"),
        ],
        tmp_path,
    )
    (project,) = (tmp_path / "user").iterdir()
    # What a plain `cruft create` back then recorded: that commit, no pinned checkout.
    state = json.loads((project / ".cruft.json").read_text())
    (project / ".cruft.json").write_text(json.dumps(state | {"checkout": None}, indent=2))
    succeed(["git", "init", "--quiet"], project)
    succeed(["git", "add", "-A"], project)
    succeed(["git", "commit", "--quiet", "-m", "rendered"], project)

    # The owner's edits: one in a file the template leaves alone, one on a line it changes.
    untouched = next(name for name in same if name.endswith((".yaml", ".yml", ".ini")))
    with (project / untouched).open("a") as handle:
        handle.write(USER_LINE)
    conflicted = changed[0]
    lines = (project / conflicted).read_text().splitlines(keepends=True)
    lines[first_changed_line(old_render / conflicted, new_render / conflicted)] = CONFLICTING_LINE
    (project / conflicted).write_text("".join(lines))
    succeed(["git", "commit", "--quiet", "-am", "our edits"], project)

    succeed(
        [str(BIN / "cruft"), "update", "--skip-apply-ask", "--project-dir", str(project)], tmp_path
    )

    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == current
    assert (project / untouched).read_text().endswith(USER_LINE)
    text = (project / conflicted).read_text()
    assert CONFLICTING_LINE in text
    # cruft applies the diff three-way (git apply -3): a conflict is left as
    # conflict markers, or as a <file>.rej reject where the merge cannot be set up.
    reported = "<<<<<<< ours" in text or (project / f"{conflicted}.rej").is_file()
    assert reported, "the conflict was not reported"
    for name in changed[1:]:
        if not (project / f"{name}.rej").exists() and "<<<<<<<" not in (project / name).read_text():
            assert filecmp.cmp(project / name, new_render / name, shallow=False), name
    assert succeed([str(BIN / "cruft"), "check", "--project-dir", str(project)], tmp_path)


def test_replay_file_reproduces_the_project(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    answers = ("cloud_target=aws", "db_size=large", "api_workers=3", "include_frontend=no")
    project = rendered(first, "--no-input", *answers)
    rendered(second, "--replay-file", str(project / ".cookiecutter-replay.json"))
    changed, same = differing_files(project, second / project.name)
    assert changed == []
    for tree in (project, second / project.name):
        assert len(same) == sum(1 for path in tree.rglob("*") if path.is_file())
    replay = json.loads((project / ".cookiecutter-replay.json").read_text())["cookiecutter"]
    assert (replay["cloud_target"], replay["api_workers"]) == ("aws", "3")


def tree(project: Path) -> dict[str, bytes]:
    """Every file but git's own and the two that record the answers."""
    return {
        name: data
        for name, data in tree_of(project).items()
        if ".git" not in Path(name).parts
        and Path(name).name not in {".cruft.json", ".cookiecutter-replay.json"}
    }


def test_changing_cloud_target_later_keeps_history_and_edits(
    tmp_path: Path, template_clone: tuple[Path, str]
) -> None:
    """DEPLOYMENT.md's own commands switch a committed, edited project from
    cloud_target=none to kubernetes: the Kubernetes files appear as a fresh render
    has them, and the owner's edit stays."""
    clone, _ = template_clone
    (tmp_path / "user").mkdir()
    command = [str(BIN / "cruft"), "create", str(clone), "--no-input"]
    succeed([*command, "--output-dir", str(tmp_path / "user")], tmp_path)
    (project,) = (tmp_path / "user").iterdir()
    succeed(["git", "init", "--quiet"], project)
    succeed(["git", "add", "-A"], project)
    succeed(["git", "commit", "--quiet", "-m", "rendered"], project)
    with (project / "README.md").open("a") as handle:
        handle.write(USER_LINE)
    succeed(["git", "commit", "--quiet", "-am", "our edit"], project)

    guide = (project / "DEPLOYMENT.md").read_text()
    for where in (
        "deploy/aws/",
        "deploy/azure/",
        "render.yaml",
        "backend/app.py",
        "deploy/kubernetes/",
    ):
        assert f"`{where}" in guide, where
    steps = shell_block(guide, "## Changing an answer later")
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    succeed(["env", f"PATH={path}", "bash", "-euo", "pipefail", "-c", steps], project)

    assert_same_as_fresh_render_plus_edit(
        project, clone, tmp_path / "fresh", "cloud_target=kubernetes"
    )
    state = json.loads((project / ".cruft.json").read_text())
    assert state["context"]["cookiecutter"]["cloud_target"] == "kubernetes"
    assert "our edit" in succeed(["git", "log", "--format=%s"], project)

    # Sizing answers, the same way. The pool is not recomputed: a third worker
    # needs a smaller pool to stay within the budget (rollout surge included).
    succeed(["git", "add", "-A"], project)
    succeed(["git", "commit", "--quiet", "-m", "kubernetes"], project)
    sizing = '{"api_workers": "3", "db_pool_max_size": "5"}'
    workers = re.sub(r"'\{\"cloud_target\": [^']*\}'", f"'{sizing}'", steps)
    assert workers != steps
    succeed(["env", f"PATH={path}", "bash", "-euo", "pipefail", "-c", workers], project)
    answers = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    assert (answers["api_workers"], answers["db_pool_max_size"]) == ("3", "5")
    changed = succeed(["git", "status", "--porcelain"], project).split()
    assert "DEPLOYMENT.md" in changed, changed
    pools = [f"{key}={answers[key]}" for key in ("db_pool_max_size", "db_pool_min_size")]
    assert_same_as_fresh_render_plus_edit(
        project, clone, tmp_path / "fresh3", "cloud_target=kubernetes", "api_workers=3", *pools
    )


def test_a_plain_cookiecutter_project_is_linked_with_its_own_answers(
    tmp_path: Path, template_clone: tuple[Path, str]
) -> None:
    """Made with plain cookiecutter and answers other than the defaults: DEPLOYMENT.md's
    `cruft link` lines, then its update lines, give the fresh kubernetes render of those
    answers plus the owner's edit (a bare `cruft link --no-input` records the defaults)."""
    clone, _ = template_clone
    answers = ("project_name=Skel Api", "example_domain=none")
    (tmp_path / "user").mkdir()
    project = rendered(tmp_path / "user", "--no-input", *answers, template=clone)
    succeed(["git", "init", "--quiet"], project)
    with (project / "README.md").open("a") as handle:
        handle.write(USER_LINE)
    succeed(["git", "add", "-A"], project)
    succeed(["git", "commit", "--quiet", "-m", "rendered, and our edit"], project)

    guide = (project / "DEPLOYMENT.md").read_text()
    link = shell_block(guide, "A project made with plain cookiecutter")
    assert "<template>" in link
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    for steps in (link.replace("<template>", str(clone)), shell_block(guide, "## Changing")):
        succeed(["env", f"PATH={path}", "bash", "-euo", "pipefail", "-c", steps], project)
    assert_same_as_fresh_render_plus_edit(
        project, clone, tmp_path / "fresh", *answers, "cloud_target=kubernetes"
    )


def assert_same_as_fresh_render_plus_edit(
    project: Path, template: Path, output: Path, *answers: str
) -> None:
    """The project holds exactly what a fresh render with `answers` holds, but for the
    owner's line at the end of README.md."""
    output.mkdir()
    fresh = rendered(output, "--no-input", *answers, template=template)
    expected, updated = tree(fresh), tree(project)
    assert any(name.startswith("deploy/kubernetes/base/") for name in expected)
    assert updated.keys() == expected.keys()
    differing = [name for name in expected if updated[name] != expected[name]]
    assert differing == ["README.md"]
    assert updated["README.md"] == expected["README.md"] + USER_LINE.encode()
