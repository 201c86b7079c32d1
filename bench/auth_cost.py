"""Authentication's cost per account read, in process: CPU time and instructions.

    python bench/auth_cost.py --instructions        # make bench-auth (about 15 minutes)
    python bench/auth_cost.py --rounds 5 --keep build/bench-auth   # reuse the renders

Renders the default project twice, `auth=none` and `auth=oidc`, migrates and seeds
each (10,000 accounts held by the token's subject), and serves the benchmark's
identity provider (bench/identity_provider.py: an RSA 2048 key for RS256 and an
Ed25519 key for EdDSA). Then runs the rendered scripts/in_process.py for four cases,
alternated in rounds so that a change in the machine's load spreads over all of
them: no authentication; one token, sent again and again (cached after the
warm-up); and a new token each request (a verification each), signed RS256 or
EdDSA. The CPU figure is in_process.py's (the process's CPU time over the measured
requests); with --instructions, one callgrind count per case follows, as
bench/instructions.py counts. Every token is minted before its run starts: signing
is the client's cost. Also times the verification's parts alone (jwt.decode, the
signature check with `cryptography`), so the miss's figures can be split into the
signature and the rest, and the rendered verifier's own decoder (auth/decoder.py)
against jwt.decode: the same checks, by PyJWT's general decode (a token whose header
the verifier has not seen) and by decode_under_known_header (every later token with
that header). Writes auth_cost.json to --output.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from identity_provider import AUDIENCE, SUBJECT, IdentityProvider, authorization_file
from servers import (
    database_urls,
    drop_database,
    in_process_command,
    render,
    run_command,
    seed,
    servers,
)

CASES = ("none", "cached", "miss_rs256", "miss_eddsa")
WARMUP = 300
COUNTED = 200  # requests per callgrind count, as bench/instructions.py's gate


def prepare(work: Path, auth: str, url: str) -> Path:
    """The project rendered with `auth` (kept in `work` if already there), its database
    migrated."""
    existing = work / auth
    found = [path for path in existing.glob("*") if (path / "backend").is_dir()]
    if found:
        project = found[0]
    else:
        existing.mkdir(parents=True, exist_ok=True)
        project = render(existing, f"auth={auth}")
    run_command(
        ["make", "init-db"], cwd=project, env={**os.environ, "APP_DATABASE__URL": url}, timeout=120
    )
    return project


@dataclass(frozen=True)
class Setup:
    """Each rendering's interpreter, first account and settings; the provider."""

    projects: dict[str, Path]
    firsts: dict[str, int]
    envs: dict[str, dict[str, str]]
    provider: IdentityProvider
    work: Path

    def command(
        self, case: str, requests: int, result: Path, *, instructions: bool = False
    ) -> tuple[list[str], dict[str, str]]:
        """The rendering's scripts/in_process.py for `case`, its tokens minted, and its
        environment; with `instructions`, counted by callgrind."""
        auth = "none" if case == "none" else "oidc"
        authorization = None
        if case != "none":
            if case == "cached":
                tokens = [self.provider.token("RS256")]
            else:
                algorithm = "RS256" if case == "miss_rs256" else "EdDSA"
                tokens = [self.provider.token(algorithm) for _ in range(WARMUP + requests)]
            path = self.work / f"authorization-{uuid.uuid4().hex}.txt"
            authorization = authorization_file(path, tokens)
        command = in_process_command(
            self.projects[auth],
            "rendered",
            "account",
            requests=requests,
            first_account=self.firsts[auth],
            result=result,
            warmup=WARMUP,
            instructions=instructions,
            authorization=authorization,
        )
        return command, self.envs[auth]


def rendered_decoder(project: Path) -> Any:
    """The rendered project's auth/decoder.py module, loaded from its file: it imports
    only PyJWT and the standard library."""
    (path,) = (project / "backend" / "src").glob("*/auth/decoder.py")
    spec = importlib.util.spec_from_file_location("rendered_decoder", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parts(provider: IdentityProvider, decoder_module: Any) -> dict[str, float]:
    """µs of each part of a verification, alone (best of 5 loops of 2,000): the
    signature check, jwt.decode and the rendered verifier's two decodes (the same checks)."""
    figures: dict[str, float] = {}
    decoder = decoder_module.TokenDecoder()
    for algorithm, key in (("RS256", provider.rsa), ("EdDSA", provider.ed)):
        token = provider.token(algorithm)
        public: Any = key.public_key()
        signing_input, _, signature_b64 = token.rpartition(".")
        signature = jwt.utils.base64url_decode(signature_b64)
        claims_checks: dict[str, Any] = {
            "algorithms": [algorithm],
            "audience": AUDIENCE,
            "issuer": provider.issuer,
            "options": {"require": ["exp", "iat", "iss", "aud", "sub"]},
        }
        checks: dict[str, Callable[[], object]] = {
            # The signature check alone, as `cryptography` does it.
            "signature": (
                partial(public.verify, signature, signing_input.encode(), PKCS1v15(), SHA256())
                if algorithm == "RS256"
                else partial(public.verify, signature, signing_input.encode())
            ),
            "jwt_decode": partial(jwt.decode, token, public, **claims_checks),
            "decoder_decode": partial(decoder.decode, token, public, **claims_checks),
            "known_header_decode": partial(
                decoder_module.decode_under_known_header,
                token,
                jwt.PyJWK(
                    {
                        **jwt.get_algorithm_by_name(algorithm).to_jwk(public, as_dict=True),
                        "alg": algorithm,
                    }
                ),
                audience=AUDIENCE,
                issuer=provider.issuer,
                leeway=30,
            ),
            "get_unverified_header": partial(jwt.get_unverified_header, token),
        }
        for name, check in checks.items():
            best = min(timeit.repeat(check, number=2000, repeat=5, timer=time.process_time))
            figures[f"{algorithm}_{name}_us"] = round(best / 2000 * 1e6, 1)
        for decode in ("decoder_decode", "known_header_decode"):
            figures[f"{algorithm}_{decode}_over_jwt_decode"] = round(
                figures[f"{algorithm}_{decode}_us"] / figures[f"{algorithm}_jwt_decode_us"], 3
            )
    return figures


def run(command: list[str], env: dict[str, str], result: Path, figure: str) -> float:
    """One in-process run's `figure` (cpu_us_per_request, m_instructions_per_request)."""
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr[-3000:]}")
    return float(json.loads(result.read_text())[figure])


def prepared(arguments: argparse.Namespace, work: Path, urls: dict[str, str]) -> Setup:
    provider = IdentityProvider()
    projects, firsts, envs = {}, {}, {}
    for auth, url in urls.items():
        project = prepare(arguments.keep or work, auth, url)
        projects[auth] = project
        firsts[auth] = asyncio.run(seed(url, None if auth == "none" else SUBJECT))
        trusted = None if auth == "none" else provider
        envs[auth] = servers(project, url, 2, work, trusted)["rendered"].env
    return Setup(projects, firsts, envs, provider, work)


def measure(setup: Setup, arguments: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"load_average": [], "cpu_us": {case: [] for case in CASES}}
    for number in range(arguments.rounds):
        figures["load_average"].append(Path("/proc/loadavg").read_text().split()[0])
        for case in CASES:
            result = setup.work / f"{case}-{number}.json"
            command, env = setup.command(case, arguments.requests, result)
            cpu = run(command, env, result, "cpu_us_per_request")
            figures["cpu_us"][case].append(round(cpu, 1))
            print(f"round {number + 1} {case:11} {cpu:7.1f} µs CPU/read", flush=True)
    figures["median_cpu_us"] = {
        case: statistics.median(values) for case, values in figures["cpu_us"].items() if values
    }
    if arguments.instructions:
        figures["million_instructions"] = {}
        for case in CASES:
            result = setup.work / f"{case}-count.json"
            command, env = setup.command(case, COUNTED, result, instructions=True)
            figure = run(command, env, result, "m_instructions_per_request")
            figures["million_instructions"][case] = round(figure, 3)
            print(f"{case:11} {figure:.3f} M instructions/read", flush=True)
    figures["parts_us"] = parts(setup.provider, rendered_decoder(setup.projects["oidc"]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="0: instructions only")
    parser.add_argument("--requests", type=int, default=2000, help="per case and round")
    parser.add_argument("--instructions", action="store_true", help="and one callgrind count each")
    parser.add_argument("--keep", type=Path, help="render into (and reuse) this directory")
    parser.add_argument("--output", type=Path, default=Path("build/bench-auth"))
    arguments = parser.parse_args()
    arguments.output.mkdir(parents=True, exist_ok=True)
    maintenance_url, _ = database_urls()
    urls = {auth: database_urls()[1] for auth in ("none", "oidc")}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as directory:
        try:
            figures = measure(prepared(arguments, Path(directory), urls), arguments)
        finally:
            for url in urls.values():
                asyncio.run(drop_database(maintenance_url, url))
    (arguments.output / "auth_cost.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
