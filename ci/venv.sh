# Sourced by the ci/ scripts: the cargo target directory, and a pinned
# Python tool in a virtualenv under it, made once and reused.

# TARGET_DIR: where cargo builds (CARGO_TARGET_DIR, relative to the repo
# root, or ./target).
case "${CARGO_TARGET_DIR:-target}" in
    /*) TARGET_DIR=$CARGO_TARGET_DIR ;;
    *) TARGET_DIR="$(pwd)/${CARGO_TARGET_DIR:-target}" ;;
esac

# pinned_venv NAME VENV PACKAGE VERSION: (re)makes VENV with
# PACKAGE==VERSION unless it already has exactly that. NAME prefixes
# messages.
pinned_venv() {
    local name=$1 venv=$2 package=$3 version=$4
    local installed
    installed=$("$venv/bin/python" -c \
        "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$package" \
        2>/dev/null || true)
    if [ "$installed" = "$version" ]; then
        return 0
    fi
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        # Debian splits venv/ensurepip out of python3.
        if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
        else
            echo "$name: python3 with the venv module is required (Debian: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version"
}
