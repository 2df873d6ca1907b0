#!/usr/bin/env bash
# node-launchers.sh [jax] [deepspeed] [accelerate] — the launchers of the `command` examples
# (examples/jax, examples/deepspeed, examples/accelerate), pip-installed into the node venv beside
# Debian's torch 1.13, TensorFlow and Horovod without changing any of them: every package already
# in the venv is pinned to its installed version while these install, and the old imports are
# checked afterwards. Versions are pinned to ones that work with torch 1.13 on Python 3.11.
# Idempotent: a launcher at its pinned version is left alone (a warm run only asks pip metadata).
# Called by up.sh (TRAINYARD_FRAMEWORKS); no argument = all three.
#
# A failure is recorded in $TY_STATE/<name>.failed (the tests print it when they skip); with
# CI=true it fails the script instead, so a green CI has run every example.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

PY="$TY_NODE_VENV/bin/python3"
PIP=("$TY_NODE_VENV/bin/pip" install --disable-pip-version-check -q)

# name → "version-check-package==version other-pins…"; the first pin is the one checked.
declare -A PINS=(
  # jax's own deps pinned too: numpy 1.x for Debian's torch; ml_dtypes/opt_einsum as TensorFlow has them.
  [jax]="jax==0.4.38 jaxlib==0.4.38 scipy==1.14.1 ml_dtypes==0.5.4 opt_einsum==3.4.0 numpy==1.26.4"
  [deepspeed]="deepspeed==0.16.9"
  # Accelerate >= 0.32 calls torch.cpu.device_count() (torch >= 2.1) for MULTI_CPU; 0.30.1 does not.
  [accelerate]="accelerate==0.30.1 huggingface_hub==0.26.5"
)

has_version() { # has_version DIST VERSION
  "$PY" -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version(sys.argv[1]) == sys.argv[2] else 1)' "$1" "$2" 2>/dev/null
}

# Every distribution in the venv (and the system packages it sees) pinned as it is now.
constraints() {
  "$TY_NODE_VENV/bin/pip" freeze --disable-pip-version-check 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' |
    grep -viE "^($(printf '%s|' "$@" | sed -e 's/|$//' -e 's/[-_.]/[-_.]/g'))==" || true
}

install_one() { # install_one NAME
  local name=$1 pins=${PINS[$1]} first dist
  first=${pins%% *}
  dist=${first%%==*}
  local -a names=()
  for p in $pins; do names+=("${p%%==*}"); done
  local cfile log="$TY_STATE/$name-install.log"
  cfile=$(mktemp)
  constraints "${names[@]}" >"$cfile"
  ty_log "launchers: installing $pins into $TY_NODE_VENV (log $log)"
  local rc=0 t0=$SECONDS
  if [[ $name == deepspeed ]]; then
    # Build its CPU shared-memory collective (deepspeed_shm_comm) now: otherwise every rank
    # JIT-compiles it with ninja when deepspeed.comm starts (minutes on a small machine). No
    # build isolation: the build needs the venv's torch. The other ops stay JIT (unused here).
    "${PIP[@]}" wheel setuptools -c "$cfile" >"$log" 2>&1 || rc=$?
    ((rc == 0)) && { DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 DS_ACCELERATOR=cpu \
      "${PIP[@]}" --no-build-isolation -c "$cfile" $pins >>"$log" 2>&1 || rc=$?; }
  else
    "${PIP[@]}" -c "$cfile" $pins >"$log" 2>&1 || rc=$?
  fi
  rm -f "$cfile"
  if ((rc == 0)) && "$PY" -c "import ${dist//-/_}" >>"$log" 2>&1; then
    rm -f "$TY_STATE/$name.failed"
    ty_log "launchers: $name installed in $((SECONDS - t0))s"
    return 0
  fi
  {
    printf '%s could not be installed (pip exit %s; full log %s). Last errors:\n' "$pins" "$rc" "$log"
    grep -E -i 'error|conflict' "$log" | tail -n 20
  } >"$TY_STATE/$name.failed"
  [[ ${CI:-} == true ]] && { cat "$TY_STATE/$name.failed" >&2; ty_die "launchers: $name failed with CI=true (its example test needs it)"; }
  ty_log "launchers: $name failed; recorded in $TY_STATE/$name.failed"
}

mkdir -p "$TY_STATE"
wanted=("$@")
((${#wanted[@]})) || wanted=(jax deepspeed accelerate)
missing=()
for name in "${wanted[@]}"; do
  [[ -n ${PINS[$name]:-} ]] || ty_die "launchers: unknown launcher '$name' (jax, deepspeed, accelerate)"
  first=${PINS[$name]%% *}
  has_version "${first%%==*}" "${first##*==}" || missing+=("$name")
done
((${#missing[@]})) || exit 0

# What imports now must still import afterwards (checked only when something is installed: slow).
imports_before=()
for m in torch tensorflow horovod.torch; do
  "$PY" -c "import $m" 2>/dev/null && imports_before+=("$m")
done
for name in "${missing[@]}"; do install_one "$name"; done
for m in "${imports_before[@]}"; do
  "$PY" -c "import $m" 2>/dev/null || ty_die "launchers: '$m' no longer imports in $TY_NODE_VENV after installing launchers"
done
ty_log "launchers: ${imports_before[*]} still import"
