#!/usr/bin/env bash
# Start a local Docker engine for memsla (idempotent): install docker.io and debootstrap if
# missing, start dockerd without iptables or a bridge (none exists here), wait until it answers.
set -euo pipefail

WAIT_SECONDS="${MEMSLA_ENGINE_WAIT:-60}"
DOCKERD_LOG="${MEMSLA_DOCKERD_LOG:-/tmp/dockerd.log}"

die() {
    echo "engine-up: $*" >&2
    exit 1
}

engine_answers() {
    docker info >/dev/null 2>&1
}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]} > 0)); then
    [[ $(id -u) -eq 0 ]] || die "need root to install ${missing[*]} (run as root or install them)"
    echo "engine-up: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi
command -v docker >/dev/null 2>&1 || die "no docker client on PATH after installing docker.io"

if engine_answers; then
    echo "engine-up: engine already running"
else
    [[ $(id -u) -eq 0 ]] || die "dockerd must be started as root"
    echo "engine-up: starting dockerd (log: $DOCKERD_LOG)"
    # setsid: the engine must outlive this shell and not get its SIGINT/SIGHUP.
    setsid dockerd --iptables=false --ip6tables=false --bridge=none \
        </dev/null >"$DOCKERD_LOG" 2>&1 &
    dockerd_pid=$!
    deadline=$((SECONDS + WAIT_SECONDS))
    until engine_answers; do
        if ! kill -0 "$dockerd_pid" 2>/dev/null; then
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited during startup (see $DOCKERD_LOG)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            die "dockerd did not answer within ${WAIT_SECONDS}s (see $DOCKERD_LOG)"
        fi
        sleep 0.5
    done
fi

docker info --format \
    'engine {{.ServerVersion}}, cgroup v{{.CgroupVersion}}, cgroup driver {{.CgroupDriver}}, storage {{.Driver}}' \
    || die "docker info failed"
