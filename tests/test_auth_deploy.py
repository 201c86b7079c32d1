"""Every cloud target's files hand the API the identity provider's issuer and audience
with bearer tokens (auth=oidc or both: production refuses to start without an issuer),
the API-key pepper as a secret with API keys (auth=api_key or both: production
refuses the development pepper), and nothing of either when auth=none. Rendered
offline; the files' own validators run in test_cloud_targets.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cfnlint.decode import cfn_yaml
from pycep import BicepParser

from .support.deploy_files import by_kind, kustomize
from .support.rendering import render

TOKEN_SETTINGS = {"APP_AUTH__ISSUER", "APP_AUTH__AUDIENCE"}
KEY_SETTINGS = {"APP_AUTH__API_KEY_PEPPER"}


def api_environment_names(project: Path, target: str) -> set[str]:
    """The names of the variables the API's container gets, per target."""
    if target == "aws":
        template = cfn_yaml.load(str(project / "deploy" / "aws" / "cloudformation.yaml"))
        service = template["Resources"]["ServiceTaskDefinition"]["Properties"]
        (container,) = service["ContainerDefinitions"]
        entries = container["Environment"] + container["Secrets"]
        return {entry["Name"] for entry in entries}
    if target == "azure":
        text = (project / "deploy" / "azure" / "main.bicep").read_text()
        BicepParser().parse(text=text)  # still valid Bicep
        variables = text.split("var environmentVariables = [", 1)[1].split("]", 1)[0]
        return {line.split("'")[1] for line in variables.splitlines() if "name:" in line}
    if target == "render":
        blueprint = yaml.safe_load((project / "render.yaml").read_text())
        (web,) = [service for service in blueprint["services"] if service["type"] == "web"]
        return {entry["key"] for entry in web["envVars"] if "key" in entry}
    # The Secrets kustomize generates from secrets.env, which the API reads (envFrom).
    documents = kustomize(project / "deploy" / "kubernetes" / "overlays" / "production")
    return {key for secret in by_kind(documents)["Secret"] for key in secret.get("data", {})}


@pytest.mark.parametrize("target", ["aws", "azure", "render", "kubernetes"])
@pytest.mark.parametrize("auth", ["oidc", "api_key", "both", "none"])
def test_the_api_gets_the_issuer_audience_and_pepper_its_auth_needs(
    tmp_path: Path, target: str, auth: str
) -> None:
    project = render(tmp_path, {"cloud_target": target, "auth": auth})
    names = api_environment_names(project, target)
    tokens = TOKEN_SETTINGS if auth in ("oidc", "both") else set()
    keys = KEY_SETTINGS if auth in ("api_key", "both") else set()
    assert (TOKEN_SETTINGS | KEY_SETTINGS) & names == tokens | keys, names
