"""Jinja filters for this template: the capacity rule, the pruning manifest and
the replay answers.

cookiecutter (and cruft) import this module while rendering, so cookiecutter.json,
the files and the hooks use these filters. The hooks get their data through them,
rendered into the hook script, rather than by reading the template directory:
cruft renders hooks without telling them where the template is.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment

CAPACITY_FILE = Path(__file__).with_name("capacity.yaml")
MANIFEST_FILE = Path(__file__).with_name("manifest.yaml")
QUESTIONS_FILE = Path(__file__).with_name("cookiecutter.json")


def load_capacity() -> dict[str, Any]:
    with CAPACITY_FILE.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


@dataclass(frozen=True)
class Budget:
    cloud_target: str
    db_size: str
    instance: str
    max_connections: int
    reserved: int
    headroom: int
    surge_percent: int
    surge_replicas: int
    proxy_idle_timeout_seconds: int
    keep_alive_seconds: int

    @property
    def usable(self) -> int:
        """Connections left for the API's pools: max_connections - reserved - headroom."""
        return self.max_connections - self.reserved - self.headroom

    def surge(self, replicas: int) -> int:
        """Replicas a rollout adds on top of `replicas` while the old ones drain."""
        return -(-replicas * self.surge_percent // 100) + self.surge_replicas

    def peak_replicas(self, replicas: int) -> int:
        """Replicas holding pools at once: the autoscaler's maximum plus the rollout surge."""
        return replicas + self.surge(replicas)

    def largest_pool(self, replicas: int, workers: int, reserved_for_worker: int = 0) -> int:
        """The largest db_pool_max_size that fits at the peak: floor((usable - the
        background worker's share) / processes)."""
        usable = self.usable - reserved_for_worker
        return max(usable // (self.peak_replicas(replicas) * workers), 0)

    def most_replicas(self, workers: int, pool: int, reserved_for_worker: int = 0) -> int:
        """The largest autoscaler maximum whose peak fits workers x pool each."""
        replicas = 0
        usable = self.usable - reserved_for_worker
        while self.peak_replicas(replicas + 1) * workers * pool <= usable:
            replicas += 1
        return replicas


def budget_for(cloud_target: str, db_size: str) -> Budget:
    capacity = load_capacity()
    target = capacity["targets"][cloud_target]
    size = target["sizes"][db_size]
    idle = target["proxy_idle_timeout_seconds"]
    return Budget(
        cloud_target=cloud_target,
        db_size=db_size,
        instance=size["instance"],
        max_connections=size["max_connections"],
        reserved=target["reserved"],
        headroom=capacity["headroom"],
        surge_percent=target["surge"]["percent"],
        surge_replicas=target["surge"]["replicas"],
        proxy_idle_timeout_seconds=idle,
        keep_alive_seconds=idle + capacity["keep_alive_margin_seconds"],
    )


def answer_or_default(answers: dict[str, Any], key: str) -> str:
    """An answer, or its cookiecutter.json default while it is not asked yet: the API's
    pool default is computed before the worker's questions come."""
    if key in answers:
        return str(answers[key])
    default = json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))[key]
    return str(default[0] if isinstance(default, list) else default)


def worker_connections(answers: dict[str, Any], budget: Budget) -> int:
    """The background worker's share at its peak: (replicas + rollout surge) x
    (its job pool + the one connection its queue listens and claims on); 0 without it.
    Raises ValueError on an answer that is not a number."""
    if answer_or_default(answers, "background_worker") != "yes":
        return 0
    replicas = int(answer_or_default(answers, "worker_replicas"))
    pool = int(answer_or_default(answers, "worker_pool_max_size"))
    if min(replicas, pool) < 1:
        raise ValueError
    queue: int = load_capacity()["worker_queue_connections"]
    return budget.peak_replicas(replicas) * (pool + queue)


def rendered_worker_connections(answers: dict[str, Any]) -> int:
    """worker_connections for files rendered from answers the hook accepted."""
    return worker_connections(answers, db_budget(answers))


def suggested_pool_max(answers: dict[str, Any]) -> int:
    """Default pool size: what the budget allows once the worker has its share,
    capped where Little's law says more is waste."""
    try:
        replicas, workers = int(answers["api_replicas"]), int(answers["api_workers"])
        budget = budget_for(answers["cloud_target"], answers["db_size"])
        worker = worker_connections(answers, budget)
    except (KeyError, ValueError):
        # A bad answer is reported by the pre-generation hook; any default will do until then.
        return 1
    if replicas < 1 or workers < 1:
        return 1
    cap: int = load_capacity()["suggested_pool_max"]
    return max(min(cap, budget.largest_pool(replicas, workers, reserved_for_worker=worker)), 1)


def db_budget(answers: dict[str, Any]) -> Budget:
    return budget_for(answers["cloud_target"], answers["db_size"])


def capacity_problem(answers: dict[str, Any]) -> str | None:
    """The capacity rule: (replicas + rollout surge) x workers x pool + reserved +
    headroom must fit max_connections: replicas is the autoscaler's maximum, and a
    rollout adds the surge while the old replicas still hold their pools. None when
    it holds, or when an answer it needs is invalid (the pre-generation hook reports
    those on their own line)."""
    try:
        replicas, workers = int(answers["api_replicas"]), int(answers["api_workers"])
        pool = int(answers["db_pool_max_size"])
        budget = budget_for(answers["cloud_target"], answers["db_size"])
        worker = worker_connections(answers, budget)
    except (KeyError, ValueError):
        return None
    if min(replicas, workers, pool) < 1:
        return None
    surge = budget.surge(replicas)
    needed = (replicas + surge) * workers * pool + worker + budget.reserved + budget.headroom
    if needed <= budget.max_connections:
        return None
    worker_part = f"+ {worker} background worker " if worker else ""
    return (
        f"db_pool_max_size={pool}: ({replicas} replicas + {surge} rollout surge) x "
        f"{workers} workers x {pool} {worker_part}"
        f"+ {budget.reserved} reserved + {budget.headroom} headroom = {needed} connections "
        f"exceeds max_connections={budget.max_connections} of {budget.cloud_target} "
        f"{budget.db_size} ({budget.instance}); accepted: "
        f"{capacity_fix(budget, replicas, workers, worker)}"
    )


def capacity_fix(budget: Budget, replicas: int, workers: int, worker: int = 0) -> str:
    """What the capacity rule accepts instead: a smaller pool if one fits, else the
    most replicas (or workers) that fit with a pool of 1; a larger db_size only when
    the target has one. `worker`: the background worker's connections at its peak."""
    largest = budget.largest_pool(replicas, workers, reserved_for_worker=worker)
    if largest:
        return f"db_pool_max_size at most {largest}"
    most = budget.most_replicas(workers, pool=1, reserved_for_worker=worker)
    fix = (
        f"api_replicas at most {most} with db_pool_max_size=1"
        if most
        else f"api_workers at most {(budget.usable - worker) // budget.peak_replicas(1)} with "
        "api_replicas=1 and db_pool_max_size=1"
    )
    sizes = list(load_capacity()["targets"][budget.cloud_target]["sizes"])
    if sizes.index(budget.db_size) < len(sizes) - 1:
        fix += ", or a larger db_size"
    return fix


def choice_lists(_answers: dict[str, Any]) -> dict[str, list[str]]:
    """Each choice question with its accepted values, as cookiecutter.json lists them."""
    questions: dict[str, Any] = json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))
    return {
        key: value
        for key, value in questions.items()
        if isinstance(value, list) and not key.startswith("_")
    }


def load_manifest() -> dict[str, dict[str, list[str]]]:
    with MANIFEST_FILE.open(encoding="utf-8") as handle:
        data: dict[str, dict[str, list[str]]] = yaml.safe_load(handle)
    return data


def unselected_paths(answers: dict[str, Any]) -> list[str]:
    """Paths (relative to the project) owned by option values that were not chosen. A
    path several values of one option own (auth: oidc and both) stays if one is chosen."""
    unselected: list[str] = []
    for option, owners in load_manifest().items():
        kept = set(owners[answers[option]])
        for paths in owners.values():
            unselected += [path for path in paths if path not in kept and path not in unselected]
    return [path.format(package_name=answers["package_name"]) for path in unselected]


def replay_json(answers: dict[str, Any]) -> str:
    """The answers as a cookiecutter replay file. Private keys (`_repo_dir`,
    `_output_dir`, …) hold machine-local paths, so they are left out: cookiecutter
    takes them from cookiecutter.json when it replays."""
    public = {key: value for key, value in answers.items() if not key.startswith("_")}
    return json.dumps({"cookiecutter": public}, indent=2, ensure_ascii=False)


class UnsafeAnswerError(SecurityError, UndefinedError):
    """An answer's Jinja reached for an unsafe attribute. An UndefinedError too, so
    cookiecutter reports it as "Unable to render variable '<answer>'" and exits 1
    instead of printing a traceback."""


class AnswerSandbox(SandboxedEnvironment):
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        return self.undefined(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe",
            name=attribute,
            obj=obj,
            exc=UnsafeAnswerError,
        )


def sandbox(environment: Any) -> None:
    """Turn cookiecutter's Jinja environment into a sandboxed one, in place.

    cookiecutter renders every answer as a Jinja template before any hook sees it
    (`project_name={{ 7*7 }}` arrives as "49"), in a plain, unsandboxed environment:
    an answer such as `{{ lipsum.__globals__.os.popen(...) }}` would run a command on
    the rendering machine. cookiecutter offers no setting for this, and it builds
    every environment (prompts, files, hooks) with the `_extensions` of
    cookiecutter.json, so this extension is the one place to close it. Jinja's own
    SandboxedEnvironment does the work: it refuses `_`-prefixed and other unsafe
    attributes, and templates compiled afterwards route calls through it.
    """
    base = type(environment)
    if not issubclass(base, AnswerSandbox):
        environment.__class__ = type(f"Sandboxed{base.__name__}", (AnswerSandbox, base), {})
        # What SandboxedEnvironment.__init__ would have set.
        environment.globals["range"] = SandboxedEnvironment().globals["range"]
        environment.binop_table = dict(SandboxedEnvironment.default_binop_table)
        environment.unop_table = dict(SandboxedEnvironment.default_unop_table)


def forget_module(name: str) -> None:
    """Drop this module from the import cache once its extension is made. cruft
    renders a project's old and new template commits in one process: without this,
    the commit rendered second would get the first one's module, and a filter or
    attribute either commit added would be missing from it. (This module was named
    local_extensions.py until the rule gained the rollout surge; the new name keeps
    projects rendered before then from serving their cached copy to this commit.)"""
    sys.modules.pop(name, None)


class SandboxedTemplateEnvironment(Extension):
    """The Jinja environment every file renders in: sandboxed (hostile answers cannot
    reach Python), with the filters above (capacity, replay, manifest, choices)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        forget_module(__name__)
        sandbox(environment)
        environment.filters["suggested_pool_max"] = suggested_pool_max
        environment.filters["db_budget"] = db_budget
        environment.filters["worker_connections"] = rendered_worker_connections
        environment.filters["replay_json"] = replay_json
        environment.filters["capacity_problem"] = capacity_problem
        environment.filters["unselected_paths"] = unselected_paths
        environment.filters["choice_lists"] = choice_lists
