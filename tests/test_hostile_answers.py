"""Hostile answers: quotes, Jinja, shell metacharacters, unicode, `../` and very long
strings are rejected with their reason, or land in the files as inert text.

cookiecutter renders every answer as a Jinja template before any hook sees it, so
`project_name={{ 7*7 }}` arrives as "49"; template_extensions.sandbox makes that
rendering a sandboxed one, so an answer cannot reach Python's internals or run a
command on the rendering machine.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
import tomllib
from pathlib import Path

import pytest
import yaml

from .support.databases import drop_database, unique_name
from .support.rendering import attempt, checked_environment, error_lines
from .support.template_files import JINJA_LEFTOVER, project_files

MARKER = "PWNED"


def touch(directory: Path) -> str:
    return f"touch {directory / MARKER}"


def nothing_written(tmp_path: Path) -> bool:
    """No file, and no marker."""
    files = [path for path in (tmp_path / "out").rglob("*") if not path.is_dir()]
    return files == [] and not (tmp_path / MARKER).exists()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('project_name=Say "hi"', "project_name='Say \"hi\"': not plain text"),
        ("author_name=Robert'); DROP TABLE users;--", "author_name=\"Robert'); DROP TABLE"),
        # Jinja that renders to a literal delimiter is still caught by the hook.
        ("project_name={% raw %}{{ 7*7 }}{% endraw %}", "project_name='{{ 7*7 }}': not plain text"),
        # Jinja is evaluated first: the hook sees "49", which is no slug.
        ("project_name={{ 7*7 }}", "project_slug='49': not a valid slug"),
        ("description=line one\nline two", "description='line one\\nline two': not plain text"),
        ("project_name=Zoë API", "project_slug='zoë-api': not a valid slug"),
        ("package_name=zoë", "package_name='zoë': not a valid Python package name"),
        ("project_slug=../escape", "project_slug='../escape': not a valid slug"),
        ("project_slug=/tmp/escape", "project_slug='/tmp/escape': not a valid slug"),
        ("package_name=../../evil", "package_name='../../evil': not a valid Python package name"),
        ("project_name=" + "A" * 200, "project_name='" + "A" * 60 + "'... (200 characters): not"),
        ("author_email=a@b.io\nX-Injected: 1", "author_email='a@b.io\\nX-Injected: 1': not an"),
    ],
)
def test_hostile_answer_is_rejected_with_its_reason(
    tmp_path: Path, answer: str, expected: str
) -> None:
    name, _, value = answer.partition("=")
    result = attempt(tmp_path / "out", f"{name}={value}")
    assert result.returncode != 0
    assert any(line.startswith(f"error: {expected}") for line in error_lines(result)), (
        result.stderr[-2000:]
    )
    assert nothing_written(tmp_path)


@pytest.mark.parametrize(
    "payload",
    [
        "$({touch})",
        "`{touch}`",
        "x; {touch}",
        "x | {touch}",
        "x && {touch} #",
    ],
)
def test_shell_metacharacters_are_rejected_and_never_run(tmp_path: Path, payload: str) -> None:
    value = payload.format(touch=touch(tmp_path))
    for name in ("project_name", "description", "author_name"):
        # A slug derived from a name holding `/` is refused first, alone (it names a directory).
        result = attempt(tmp_path / name / "out", f"{name}={value}", "project_slug=shell")
        assert result.returncode != 0
        assert any(line.startswith(f"error: {name}=") for line in error_lines(result))
        assert nothing_written(tmp_path / name)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize(
    "template",
    [
        "{{{{ lipsum.__globals__['os'].popen('{touch}').read() }}}}",
        "{{{{ cycler.__init__.__globals__.os.system('{touch}') }}}}",
        "{{{{ ''.__class__.__mro__[1].__subclasses__() }}}}",
        "{{{{ self._TemplateReference__context.joiner.__init__.__globals__.os }}}}",
        "{{{{ lipsum|attr('__globals__') }}}}",
    ],
)
def test_jinja_in_an_answer_cannot_reach_python_internals(tmp_path: Path, template: str) -> None:
    result = attempt(tmp_path / "out", f"description={template.format(touch=touch(tmp_path))}")
    assert not (tmp_path / MARKER).exists(), "the answer ran a command"
    assert result.returncode != 0
    assert result.stdout.startswith("Unable to render variable 'description'"), result.stdout[:500]
    assert "is unsafe" in result.stdout.splitlines()[1]
    assert "Traceback" not in result.stdout + result.stderr
    assert nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("project_slug=a/b", "error: project_slug='a/b': not a valid slug (holds '/');"),
        ("project_name=A/B", "error: project_slug='a/b': not a valid slug (holds '/');"),
        ("project_slug=a\\b", "error: project_slug='a\\\\b': not a valid slug (holds '\\\\');"),
        (
            "project_name=" + "A" * 5000,
            "error: project_slug='" + "a" * 60 + "'... (5000 characters): not a valid slug "
            "(longer than a directory name may be: 255 bytes);",
        ),
        (
            "project_slug=..",
            "error: project_slug='..': not a valid slug (names no directory of its own);",
        ),
        (
            "project_slug=.",
            "error: project_slug='.': not a valid slug (names no directory of its own);",
        ),
        (
            "project_slug=",
            "error: project_slug='': not a valid slug (names no directory of its own);",
        ),
    ],
    ids=["slash", "derived-slash", "backslash", "too-long", "parent", "current", "empty"],
)
def test_a_slug_that_is_no_directory_name_is_rejected_before_anything_is_written(
    tmp_path: Path, answer: str, expected: str
) -> None:
    """cookiecutter creates the project directory before the pre-generation hook runs:
    project_directory.directory_name checks the slug while cookiecutter renders its
    answers, so `a/b` leaves no empty `a` and a 5000-character name no half-made tree."""
    result = attempt(tmp_path / "out", answer)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        expected + " accepted: lowercase letters and digits "
        "in dash-separated words, starting with a letter, "
        "at most 64"
    ], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert list((tmp_path / "out").iterdir()) == []
    assert nothing_written(tmp_path)


# Accepted by the hook (plain text may hold ' ( ) & + / - and any letter), and
# shaped like a command: if a file ever handed it to a shell, MARKER would appear.
def spicy_answers(directory: Path) -> dict[str, str]:
    return {
        "project_name": "O'Brien & Co (R+D) 2.0",
        "project_slug": "obrien-co",
        "description": f"Evil & {touch(directory)} (or 'not') - a test",
        "author_name": "José Núñez-O'Neil & " + touch(directory),
    }


def python_tokens_holding(text: str, source: str) -> set[int]:
    """The token types of a Python file in which `text` occurs."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.type for token in tokens if text in token.string}


@pytest.fixture(scope="module")
def spicy_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered with the post-generation checks on: install, init-db and the smoke
    test run the project's Makefile, scripts and service with these answers."""
    output = tmp_path_factory.mktemp("spicy")
    database = unique_name("spicy")
    environment = checked_environment(database)
    answers = [f"{key}={value}" for key, value in spicy_answers(output).items()]
    try:
        result = attempt(output / "out", *answers, env=environment, checks=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "✓ smoke" in result.stdout
    finally:
        drop_database(database)
    assert not (output / MARKER).exists(), "an answer ran as a command"
    return output / "out" / "obrien-co"


@pytest.mark.slow
def test_accepted_answers_stay_inert_text_in_every_file(spicy_project: Path) -> None:
    answers = spicy_answers(spicy_project.parents[1])
    needles = [answers["description"], answers["author_name"], answers["project_name"]]
    found = 0
    for path in project_files(spicy_project):
        if not path.is_file() or path.suffix in {".lock", ".pyc"}:
            continue
        text = path.read_text(errors="replace")
        present = [needle for needle in needles if needle in text]
        assert not JINJA_LEFTOVER.search(text), path
        if not present:
            continue
        found += 1
        assert path.suffix not in {".sh", ""}, f"{path} hands an answer to a shell"
        assert path.name != "Makefile", f"{path} hands an answer to a shell"
        if path.suffix == ".py":
            ast.parse(text)
            for needle in present:
                kinds = python_tokens_holding(needle, text)
                assert kinds <= {tokenize.STRING, tokenize.COMMENT}, (path, needle)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix in {".yml", ".yaml"}:
            list(yaml.safe_load_all(text))
        elif path.suffix == ".json":
            json.loads(text)
    assert found >= 3, "the answers were expected in the README, pyproject and the package"
    metadata = tomllib.loads((spicy_project / "backend" / "pyproject.toml").read_text())
    assert metadata["project"]["description"] == answers["description"]
    assert metadata["project"]["authors"][0]["name"] == answers["author_name"]
