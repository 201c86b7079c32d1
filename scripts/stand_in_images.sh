#!/usr/bin/env bash
# Stand-ins, in the local Docker engine, for the base images a rendered project
# names (its backend/Dockerfile and docker-compose.yml), for machines that reach
# no container registry: each image is first pulled for real, and only when that
# fails is it assembled from Debian trixie packages with debootstrap and tagged
# with exactly the name the files use. Images already present are kept, so a
# machine builds each stand-in once. Users of the rendered project get the real
# images; these only have to honour what the project relies on:
#   python:<version>-slim-trixie  Debian's python3 (3.13) as python/pip in /usr/local/bin
#   postgres:<version>-alpine     Debian's PostgreSQL 17 behind an entrypoint that honours
#                                 POSTGRES_USER/PASSWORD/DB and the data directory, with
#                                 pg_isready on PATH, running as the postgres user
#   nginx:<version>-alpine        Debian's nginx reading /etc/nginx/conf.d/*.conf,
#                                 serving /usr/share/nginx/html, logging to stdout
# Needs root, docker and debootstrap. Usage: scripts/stand_in_images.sh IMAGE...
set -euo pipefail

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${STAND_IN_CACHE:-/var/cache/stand-in-images}"

# A Debian trixie root filesystem with the given packages, in directory $1. Each
# image has its own package cache and log: the images are assembled in parallel.
debian_rootfs() {
    local rootfs="$1" include="$2"
    local own="$cache/${include%%,*}"
    mkdir -p "$own/debs"
    debootstrap --variant=minbase --cache-dir="$own/debs" --include="$include" \
        trixie "$rootfs" "$mirror" >"$own/debootstrap.log" 2>&1 \
        || { tail -20 "$own/debootstrap.log" >&2; return 1; }
    mkdir -p "$rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
}

# Import directory $2 as image $1; the rest are `docker import --change` instructions.
import_image() {
    local image="$1" rootfs="$2"
    shift 2
    local changes=()
    for change in "$@"; do changes+=(--change "$change"); done
    tar -C "$rootfs" -c . | docker import "${changes[@]}" - "$image" >/dev/null
}

# `docker import` cannot set a stop signal: one more layer-less build step does.
set_stop_signal() {
    printf 'FROM %s\nSTOPSIGNAL %s\n' "$1" "$2" | DOCKER_BUILDKIT=0 docker build --quiet --tag "$1" - >/dev/null 2>&1
}

python_image() {
    local rootfs="$1"
    debian_rootfs "$rootfs" python3,python3-pip,python3-venv,ca-certificates
    for name in python python3; do ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/$name"; done
    ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
    # Debian marks its Python externally managed; the official image does not.
    import_image "$2" "$rootfs" 'CMD ["python3"]' \
        'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'ENV LANG=C.UTF-8' 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
        'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
}

postgres_image() {
    local rootfs="$1"
    debian_rootfs "$rootfs" postgresql-17
    rm -rf "$rootfs"/etc/postgresql/* "$rootfs"/var/lib/postgresql/17
    install -d -m 0700 -o "$(chroot "$rootfs" id -u postgres)" -g "$(chroot "$rootfs" id -g postgres)" \
        "$rootfs/var/lib/postgresql/data" "$rootfs/var/run/postgresql"
    cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# The part of the official image's entrypoint the project relies on: a first start
# initialises $PGDATA with POSTGRES_USER/POSTGRES_PASSWORD and creates POSTGRES_DB;
# password authentication from other hosts; then the given command.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
    initdb -D "$PGDATA" -U "$user" --pwfile="$password_file" -E UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$database" != postgres ]; then
        echo "CREATE DATABASE \"$database\" OWNER \"$user\"" \
            | postgres --single -D "$PGDATA" -j postgres >/dev/null
    fi
fi
exec "$@"
EOF
    chmod 0755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
    import_image "$2" "$rootfs" 'USER postgres' 'ENV PGDATA=/var/lib/postgresql/data' \
        'ENV PATH=/usr/lib/postgresql/17/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'ENV LANG=C.UTF-8' 'VOLUME /var/lib/postgresql/data' 'EXPOSE 5432' \
        'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]'
    # Fast shutdown, as the official image: SIGTERM would wait for every client to leave.
    set_stop_signal "$2" SIGINT
}

nginx_image() {
    local rootfs="$1"
    debian_rootfs "$rootfs" nginx-light
    rm -f "$rootfs"/etc/nginx/sites-enabled/*
    mkdir -p "$rootfs/usr/share/nginx/html"
    ln -sf /dev/stdout "$rootfs/var/log/nginx/access.log"
    ln -sf /dev/stderr "$rootfs/var/log/nginx/error.log"
    import_image "$2" "$rootfs" 'EXPOSE 80' 'CMD ["nginx", "-g", "daemon off;"]'
    set_stop_signal "$2" SIGQUIT
}

assemble() {
    local image="$1" rootfs
    rootfs="$(mktemp -d)"
    # shellcheck disable=SC2064 # the directory is known now
    trap "rm -rf '$rootfs'" RETURN
    case "$image" in
        python:*-slim-trixie) python_image "$rootfs" "$image" ;;
        postgres:17*) postgres_image "$rootfs" "$image" ;;
        nginx:*) nginx_image "$rootfs" "$image" ;;
        *) echo "no stand-in for $image" >&2; return 2 ;;
    esac
    echo "assembled a stand-in for $image from Debian packages (no registry reachable)"
}

jobs=()
for image in "$@"; do
    if docker image inspect "$image" >/dev/null 2>&1; then
        continue
    fi
    if docker pull --quiet "$image" >/dev/null 2>&1; then
        echo "pulled $image"
        continue
    fi
    assemble "$image" &
    jobs+=("$!")
done
status=0
for job in "${jobs[@]}"; do
    wait "$job" || status=1
done
exit "$status"
