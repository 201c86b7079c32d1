"""auth=oidc: every cloud target's files hand the API the identity provider's issuer
and audience (the production configuration refuses to start without an issuer), and
nothing names them when auth=none. Rendered offline; the files' own validators run
in test_cloud_targets.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cfnlint.decode import cfn_yaml
from pycep import BicepParser

from .support.deploy_files import by_kind, kustomize
from .support.rendering import render

SETTINGS = {"APP_AUTH__ISSUER", "APP_AUTH__AUDIENCE"}


def api_environment_names(project: Path, target: str) -> set[str]:
    """The names of the variables the API's container gets, per target."""
    if target == "aws":
        template = cfn_yaml.load(str(project / "deploy" / "aws" / "cloudformation.yaml"))
        service = template["Resources"]["ServiceTaskDefinition"]["Properties"]
        (container,) = service["ContainerDefinitions"]
        return {entry["Name"] for entry in container["Environment"]}
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
@pytest.mark.parametrize("auth", ["oidc", "none"])
def test_the_api_gets_the_issuer_and_audience_only_with_auth(
    tmp_path: Path, target: str, auth: str
) -> None:
    project = render(tmp_path, {"cloud_target": target, "auth": auth})
    names = api_environment_names(project, target)
    assert SETTINGS & names == (SETTINGS if auth == "oidc" else set()), names
