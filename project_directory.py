"""The `directory_name` filter: cookiecutter.json checks the slug with it while the
answers are rendered, before cookiecutter writes anything.

A module of its own, not a part of template_extensions.py: cruft renders a project's
old and new template commits in one process, where a module imported first served
both, so a filter new to it would have been missing from the render of the commit
that introduced it. Both modules now drop themselves from the import cache
when their extension is made.
"""

from __future__ import annotations

import sys
from typing import Any

from jinja2 import Undefined
from jinja2.ext import Extension

MAX_SLUG = 64  # the pre-generation hook's limit, named in the message
NAME_MAX = 255  # bytes in one file name on Linux and macOS file systems
SHOWN = 60


def directory_name(slug: str | Undefined) -> str:
    """The slug, once it can name the project directory. cookiecutter creates that
    directory before the pre-generation hook runs (and on failure removes only the
    last part of it), so `a/b` would leave `a` behind, a 300-character slug would
    fail with "File name too long", and `..` would be the output directory's parent.
    cookiecutter.json renders this filter after the answers, before anything is
    written; the hook checks the rest of the slug's rule (and reports every other bad
    answer with it)."""
    if isinstance(slug, Undefined):
        # A replay renders only the answers its file lacks, this one among them, without
        # the slug: the slug was checked when the file was written.
        return ""
    shown = repr(slug) if len(slug) <= SHOWN else f"{slug[:SHOWN]!r}... ({len(slug)} characters)"
    separator = next((char for char in ("/", "\\") if char in slug), None)
    if separator:
        reason = f"holds {separator!r}"
    elif slug in ("", ".", ".."):
        # The output directory itself or its parent: cookiecutter would only say that
        # directory "already exists", naming no answer.
        reason = "names no directory of its own"
    elif len(slug.encode()) > NAME_MAX:
        reason = f"longer than a directory name may be: {NAME_MAX} bytes"
    else:
        return slug
    print(
        f"error: project_slug={shown}: not a valid slug ({reason}); accepted: lowercase letters "
        f"and digits in dash-separated words, starting with a letter, at most {MAX_SLUG}",
        file=sys.stderr,
    )
    # cookiecutter turns any other exception raised while rendering into a traceback.
    raise SystemExit(1)


class ProjectDirectoryExtension(Extension):
    """Registers the filter above."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        # As template_extensions.forget_module: the next commit imports its own copy.
        sys.modules.pop(__name__, None)
        environment.filters["directory_name"] = directory_name
