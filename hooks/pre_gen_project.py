"""Reject bad answers before anything is written: one line per problem, naming
the answer, what is wrong and what is accepted. cookiecutter removes the
half-made project directory when this exits non-zero."""

import json
import keyword
import re
import sys

# Double-encoded so any answer, quotes and all, arrives as plain data.
ANSWERS = json.loads({{ cookiecutter | tojson | tojson }})
# Computed by template_extensions.capacity_problem, the one place the rule lives.
CAPACITY_PROBLEM = json.loads({{ cookiecutter | capacity_problem | tojson | tojson }})
CHOICES = json.loads({{ cookiecutter | choice_lists | tojson | tojson }})

SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z][a-z0-9_]*")
EMAIL = re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[A-Za-z]{2,}")
# Plain text that is safe in YAML, TOML, Python strings and Markdown alike.
TEXT = re.compile(r"[\w][\w .,'()&+/-]*")
# Libraries the service imports, and the stdlib's own test package (which
# sys.stdlib_module_names leaves out): a package with one of these names shadows it.
SHADOWED = {"test", "alembic", "asyncpg", "fastapi", "httpx", "orjson", "pydantic",
                "pydantic_settings", "pytest", "sqlalchemy", "starlette", "structlog",
                "uvicorn", "uvloop", "yaml"}
MAX_NAME = 64
SHOWN = 60


def shown(value):
    """The answer as a Python literal, cut short: a 10 000-character answer would
    drown the reason it was rejected."""
    if len(value) <= SHOWN:
        return repr(value)
    return f"{value[:SHOWN]!r}... ({len(value)} characters)"


def text_problem(name, limit):
    value = ANSWERS[name]
    if not TEXT.fullmatch(value) or len(value) > limit:
        return (f"{name}={shown(value)}: not plain text; accepted: up to {limit} letters, digits, "
                "spaces and . , ' ( ) & + / - (no quotes, braces, $ or backslashes)")
    return None


def slug_problems():
    slug, package = ANSWERS["project_slug"], ANSWERS["package_name"]
    if not SLUG.fullmatch(slug) or len(slug) > MAX_NAME:
        yield (f"project_slug={shown(slug)}: not a valid slug; accepted: lowercase letters and "
               f"digits in dash-separated words, starting with a letter, at most {MAX_NAME}")
    if not PACKAGE.fullmatch(package) or len(package) > MAX_NAME:
        yield (f"package_name={shown(package)}: not a valid Python package name; accepted: "
               f"lowercase letters, digits and _, starting with a letter, at most {MAX_NAME}")
    elif keyword.iskeyword(package) or keyword.issoftkeyword(package):
        yield f"package_name={package!r}: a Python keyword; accepted: any other name"
    elif package in sys.stdlib_module_names or package in SHADOWED:
        yield (f"package_name={package!r}: shadows the module {package!r} the service needs; "
               "accepted: a name no standard-library or dependency module has")


def integer(name, low, high):
    """The answer as an int, or a problem line."""
    value = ANSWERS[name]
    try:
        number = int(value)
    except ValueError:
        return None, f"{name}={shown(value)}: not an integer; accepted: a whole number {low}..{high}"
    if not low <= number <= high:
        return None, f"{name}={shown(value)}: out of range; accepted: a whole number {low}..{high}"
    return number, None


def number_problems():
    """Every numeric answer, then the pool rules that combine them."""
    limits = {"api_workers": (1, 64), "api_replicas": (1, 1000),
              "db_pool_min_size": (1, 1000), "db_pool_max_size": (1, 1000),
              "db_pool_max_lifetime_seconds": (1, 86400),
              "db_pool_acquire_timeout_seconds": (1, 60),
              "worker_replicas": (1, 1000), "worker_pool_max_size": (1, 1000)}
    numbers = {}
    for name, (low, high) in limits.items():
        number, problem = integer(name, low, high)
        if problem:
            yield problem
        else:
            numbers[name] = number
    if {"db_pool_min_size", "db_pool_max_size"} <= numbers.keys():
        low, high = numbers["db_pool_min_size"], numbers["db_pool_max_size"]
        if low > high:
            yield (f"db_pool_min_size={low}: above db_pool_max_size={high}; "
                   f"accepted: a min_size from 1 to {high}")
    # The capacity rule only over answers that passed their own range: an
    # out-of-range one already has its line.
    if CAPACITY_PROBLEM and {"api_replicas", "api_workers", "db_pool_max_size",
                             "worker_replicas", "worker_pool_max_size"} <= numbers.keys():
        yield CAPACITY_PROBLEM


def choice_problems():
    """cookiecutter checks choices given on the command line; replay files it does not."""
    for name, accepted in CHOICES.items():
        if ANSWERS[name] not in accepted:
            yield f"{name}={shown(ANSWERS[name])}: not a choice; accepted: {', '.join(accepted)}"


def target_problems():
    if ANSWERS["cloud_target"] == "vercel" and ANSWERS["include_frontend"] != "yes":
        yield ("cloud_target='vercel': Vercel serves the frontend, which include_frontend="
               f"{ANSWERS['include_frontend']!r} leaves out; accepted: include_frontend=yes, "
               "or another cloud_target")


def problems():
    yield from choice_problems()
    yield from target_problems()
    for name, limit in (("project_name", 100), ("author_name", 100), ("description", 200)):
        if problem := text_problem(name, limit):
            yield problem
    if not EMAIL.fullmatch(ANSWERS["author_email"]):
        yield (f"author_email={shown(ANSWERS['author_email'])}: not an email address; "
               "accepted: name@example.com")
    yield from slug_problems()
    yield from number_problems()


def main():
    found = list(problems())
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
