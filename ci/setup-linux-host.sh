#!/usr/bin/env bash
# Prepare a Linux host for archmatrix's container and emulated lanes:
#   - Docker engine (Debian's docker.io), qemu-user-static, mmdebstrap (the
#     lanes' Debian base images; debian-archive-keyring verifies them on Ubuntu)
#   - gcc and a cross gcc for the other lane architecture (the tests' fault corpus)
#   - binfmt_misc mounted, qemu-aarch64 registered (F flag: works in containers)
#   - dockerd running without any network (containers never need one)
#   - proof that `docker run --init` works (under QEMU a PID 1 without an init
#     hangs forever on a fatal signal, so lanes always run with --init)
#
# Idempotent: every step checks first and only acts when something is missing,
# so running it twice is safe. Needs root: as another user it re-runs itself
# with sudo, or says how to run it as root. Prints what it did.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/archmatrix-dockerd.log}
DOCKERD_WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}
# Foreign architectures whose binaries must run through qemu-user.
QEMU_ARCHES=(aarch64)
# pipx: the quickstart's `pipx run nox` works for root and for a user alike, where
# a distribution's Python refuses `pip install` outside a venv (PEP 668).
PACKAGES=(docker.io qemu-user-static mmdebstrap debian-archive-keyring pipx)
# An engine that is already installed, from any package, is used as it is:
# GitHub's runners ship Docker's own packages (containerd.io, docker-ce or
# moby), which conflict with Debian's docker.io, so installing it would fail.
if command -v dockerd >/dev/null; then
    PACKAGES=(qemu-user-static mmdebstrap debian-archive-keyring pipx)
fi
# The fault corpus (tests/integration/corpus.py) compiles its C extensions
# for both lane architectures: gcc for this host's, a cross gcc for the other.
case "$(uname -m)" in
    x86_64) PACKAGES+=(gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    aarch64) PACKAGES+=(gcc gcc-x86-64-linux-gnu libc6-dev-amd64-cross) ;;
esac
# The HTML report's browser test (tests/integration/test_html_browser.py) renders
# the page in headless Chromium: any Chromium or Chrome already there is used
# (GitHub's runners ship one), else the distribution's chromium is installed.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
        && ! command -v google-chrome >/dev/null && ! command -v google-chrome-stable >/dev/null; then
    PACKAGES+=(chromium)
fi
BINFMT_DIR=/proc/sys/fs/binfmt_misc

say() { printf 'setup-linux-host: %s\n' "$*"; }
die() { printf 'setup-linux-host: error: %s\n' "$*" >&2; exit 1; }

if [[ "$(uname -s)" != Linux ]]; then
    die "this script prepares Linux hosts only (this is $(uname -s)); on macOS use Docker Desktop"
fi
# Not root: re-run through sudo when there is one (it may ask for a password),
# else say how to become root. The two settings above travel along explicitly,
# since sudo does not keep the caller's environment.
if [[ "$(id -u)" -ne 0 ]]; then
    self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
    if command -v sudo >/dev/null 2>&1; then
        say "not root: re-running with sudo"
        exec sudo -- env "DOCKERD_LOG=$DOCKERD_LOG" "DOCKERD_WAIT_SECONDS=$DOCKERD_WAIT_SECONDS" \
            bash "$self" "$@"
    fi
    die "needs root and sudo is not installed; run it as root: su -c 'bash $self'"
fi

# --- packages -----------------------------------------------------------------
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # wait for another apt/dpkg run (unattended upgrades, a parallel setup) instead of failing at once
    apt_wait=(-o DPkg::Lock::Timeout=300)
    apt-get "${apt_wait[@]}" update -qq
    # No recommends: they pull in apparmor, needrestart, binfmt-support and
    # systemd hooks that we neither need nor want (binfmt is registered below).
    apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}"
else
    say "packages already installed: ${PACKAGES[*]}"
fi

# --- binfmt_misc + qemu ---------------------------------------------------------
if ! grep -qs " $BINFMT_DIR binfmt_misc " /proc/mounts; then
    say "mounting binfmt_misc on $BINFMT_DIR"
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR"
else
    say "binfmt_misc already mounted"
fi

for arch in "${QEMU_ARCHES[@]}"; do
    conf=/usr/lib/binfmt.d/qemu-$arch.conf
    [[ -r "$conf" ]] || die "$conf not found (is qemu-user-static installed?)"
    # The entry's name is the second ':'-separated field of the rule; writing a
    # rule whose name is already registered fails with "File exists".
    name=$(cut -d: -f2 "$conf")
    entry=$BINFMT_DIR/$name
    if [[ -e "$entry" ]]; then
        if head -n1 "$entry" | grep -qx enabled; then
            say "binfmt $name already registered"
        else
            say "binfmt $name registered but disabled: enabling"
            echo 1 >"$entry"
        fi
    else
        say "registering binfmt $name from $conf"
        cat "$conf" >"$BINFMT_DIR/register"
    fi
done

# --- docker engine ---------------------------------------------------------------
docker_answers() { docker info >/dev/null 2>&1; }

if docker_answers; then
    say "docker daemon already answering"
else
    if pidof dockerd >/dev/null; then
        say "dockerd is running but not answering yet: waiting for it"
    else
        say "starting dockerd (no bridge, no iptables), log: $DOCKERD_LOG"
        # setsid + nohup: the daemon must outlive this script and its terminal.
        setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false \
            >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    for ((i = 0; i < DOCKERD_WAIT_SECONDS; i++)); do
        docker_answers && break
        sleep 1
    done
    if ! docker_answers; then
        tail -n 20 "$DOCKERD_LOG" >&2 || true
        die "docker daemon did not answer within ${DOCKERD_WAIT_SECONDS} s (log: $DOCKERD_LOG)"
    fi
    say "docker daemon answering after ~${i} s"
fi
say "docker server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?')," \
    "client $(docker version --format '{{.Client.Version}}' 2>/dev/null || echo '?')"

# --- the user who asked (through sudo) may use the engine ---------------------------
# The daemon's socket belongs to the docker group: without it the Docker lanes
# of that user's runs are skipped ("permission denied"), with this same fix.
if [[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]] && getent group docker >/dev/null; then
    if id -nG "$SUDO_USER" | tr ' ' '\n' | grep -qx docker; then
        say "$SUDO_USER is in the docker group"
    else
        usermod -aG docker "$SUDO_USER"
        say "added $SUDO_USER to the docker group: it applies from the next login (or: newgrp docker)"
    fi
fi

# --- prove `docker run --init` works ----------------------------------------------
# No registry is reachable, so the probe image is made from this host's own
# /bin/true and the libraries it links against; it is removed afterwards.
probe=archmatrix-probe-init:latest
tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; docker rmi -f "$probe" >/dev/null 2>&1 || true; }
trap cleanup EXIT
mapfile -t libs < <(ldd /bin/true | grep -o '/[^ ]*')
# -h stores the files behind symlinks (merged /usr, ld.so links) as real files.
tar -C / -chf "$tmp/probe.tar" bin/true "${libs[@]#/}"
docker import "$tmp/probe.tar" "$probe" >/dev/null
if ! out=$(docker run --rm --init --network none "$probe" /bin/true 2>&1); then
    printf '%s\n' "$out" >&2
    die "'docker run --init' fails: the engine has no working docker-init (Debian: package tini)"
fi
say "'docker run --init' works (init binary: $(docker info --format '{{.InitBinary}}' 2>/dev/null))"
say "done"
