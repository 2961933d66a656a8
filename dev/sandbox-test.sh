#!/usr/bin/env bash
# Runs the check phase of the Nix package (nixos-module/package.nix) the way
# the Nix build sandbox runs it, on a machine without Nix:
#
#   - as an unprivileged user: uid 1000 in a user namespace of its own (when
#     this script runs as root it first drops to nobody), no capability;
#   - no network (own network namespace: loopback only), own PID, IPC and
#     UTS namespaces, hostname "localhost";
#   - /usr/bin holding nothing but `sh` (the sandbox's /bin/sh), /usr/sbin
#     empty: no /usr/bin/env, no python3, no btrfs; the tools the derivation
#     brings (stdenv's coreutils, grep, sed, ...; cc; python3 from
#     nativeCheckInputs; cargo and rustc) come from /tools/... on PATH, as
#     they come from /nix/store/... there;
#   - a minimal /dev (no loop devices, no /dev/kmsg), /etc with only passwd,
#     group and hosts, as Nix writes them;
#   - a read-only copy of exactly the files the derivation's `src` holds
#     (read from package.nix), with the derivation's postPatch applied to it;
#   - HOME=/homeless-shelter (which does not exist), TMPDIR=/build;
#   - cargo offline, with a read-only copy of the already-downloaded registry
#     as CARGO_HOME, the target directory outside the source.
#
# The test command is the derivation's: `cargo test` with its cargoTestFlags
# and its check profile, run through nix-instantiate from package.nix (no
# nixpkgs needed). Tests marked #[ignore = "needs ..."] are left out, as in
# the Nix check phase, and counted at the end; dev/test.sh runs them.
#
# What differs from Nix: the host's glibc target instead of musl, the host's
# /usr/lib (libraries) and toolchain instead of store paths.
#
# Cache (target directory, staged toolchain): TABULA_SANDBOX_CACHE, default
# /var/tmp/tabula-sandbox-test. Exit status: cargo test's.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${TABULA_SANDBOX_CACHE:-/var/tmp/tabula-sandbox-test}

die() { echo "sandbox-test: $*" >&2; exit 2; }
command -v bwrap >/dev/null || die "bubblewrap is not installed (apt-get install bubblewrap; dev/setup-host.sh does it)"
command -v nix-instantiate >/dev/null || die "nix-instantiate is not installed (apt-get install nix-bin; dev/setup-host.sh does it)"
command -v rustup >/dev/null || die "rustup is not installed: the toolchain is read from rustup"

# --- what the derivation says ---------------------------------------------------
# package.nix called with just enough of lib and rustPlatform to read its
# attributes: the source file set, postPatch, the test flags and profile.
drv=$(NIX_PATH='' NIX_CONFIG="build-users-group =" nix-instantiate --eval --strict --json --readonly-mode -E '
  let
    lib = {
      importTOML = p: builtins.fromTOML (builtins.readFile p);
      fileset = { toSource = a: a.fileset; unions = l: l; };
      licenses = { mit = "mit"; asl20 = "asl20"; };
      platforms.linux = [ ];
    };
    a = import '"$repo"'/nixos-module/package.nix {
      inherit lib;
      rustPlatform.buildRustPackage = a: a;
      python3 = "python3";
    };
  in {
    src = map toString a.src;
    postPatch = a.postPatch or "";
    preCheck = a.preCheck or "";
    cargoTestFlags = a.cargoTestFlags or [ ];
    checkFlags = a.checkFlags or [ ];
    checkType = a.checkType or "release";
  }') || die "cannot read the derivation's attributes from nixos-module/package.nix"
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print("\n".join(v) if isinstance(v, list) else v)' "$drv" "$1"; }
mapfile -t src < <(field src)
mapfile -t test_flags < <(field cargoTestFlags)
mapfile -t check_flags < <(field checkFlags)
check_type=$(field checkType)
post_patch=$(field postPatch)
pre_check=$(field preCheck)
profile=$check_type
[ "$profile" = debug ] && profile=dev

# --- stage what the unprivileged user reads -----------------------------------------
mkdir -p "$cache"
chmod 755 "$cache"
rm -rf "$cache/source" "$cache/build"
mkdir -p "$cache/source" "$cache/build" "$cache/target" "$cache/etc"
for path in "${src[@]}"; do
  rel=${path#"$repo"/}
  [ "$rel" != "$path" ] || die "package.nix's src names $path, outside the repository"
  mkdir -p "$cache/source/$(dirname "$rel")"
  # tracked and untracked-but-not-ignored files only, as a checkout has them;
  # fresh timestamps, so that cargo rebuilds the workspace crates (the cached
  # target directory may hold a build of another checkout with newer files)
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard -- "$rel") |
    (cd "$repo" && xargs -0 -r cp -P --preserve=mode --parents -t "$cache/source")
done

toolchain=$(dirname "$(dirname "$(rustup which rustc)")")
stamp=$("$toolchain/bin/rustc" -vV | tr '\n' ' ')
if [ "$(cat "$cache/toolchain.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$cache/toolchain" && mkdir -p "$cache/toolchain"
  # hard links where the file system allows, copies elsewhere; no docs
  cp -al "$toolchain/bin" "$toolchain/lib" "$cache/toolchain/" 2>/dev/null ||
    cp -a "$toolchain/bin" "$toolchain/lib" "$cache/toolchain/"
  echo "$stamp" >"$cache/toolchain.stamp"
fi
rm -rf "$cache/cargo-home" && mkdir -p "$cache/cargo-home"
cp -a "${CARGO_HOME:-$HOME/.cargo}/registry" "$cache/cargo-home/"

cat >"$cache/etc/passwd" <<'EOF'
root:x:0:0:Nix build user:/build:/noshell
nixbld:x:1000:100:Nix build user:/build:/noshell
nobody:x:65534:65534:Nobody:/:/noshell
EOF
cat >"$cache/etc/group" <<'EOF'
root:x:0:
nixbld:!:100:
nogroup:x:65534:
EOF
printf '127.0.0.1 localhost\n::1 localhost\n' >"$cache/etc/hosts"

# --- tools: what stdenv, the derivation's inputs and the toolchain put on PATH -------------
tools=()
tool() { # tool NAME [HOST_PATH]
  local from=${2:-}
  [ -n "$from" ] || from=$(PATH=/usr/bin:/bin:/usr/sbin:/sbin type -P "$1") || die "$1 is not installed on this host"
  tools+=(--ro-bind "$(readlink -f "$from")" "/tools/bin/$1")
}
# stdenv: coreutils, findutils, diffutils, sed, grep, gawk, tar, gzip, bzip2,
# xz, make, patch, bash
mapfile -t coreutils < <(dpkg -L coreutils | grep -E '^/(usr/)?bin/' | xargs -n1 basename | sort -u)
for t in "${coreutils[@]}" find xargs diff cmp sed grep awk tar gzip bzip2 xz make patch bash; do
  case "$t" in env) continue ;; esac # /usr/bin/env is the point; stdenv has it on PATH, not at /usr/bin
  tool "$t"
done
tool env
tool sh "$(command -v dash || command -v bash)"
# the C toolchain (rustc links with cc)
for t in cc gcc ld ld.bfd as ar ranlib strip nm objcopy; do tool "$t"; done
# gcc finds its own parts relative to where it runs from
tools+=(--ro-bind /usr/lib/gcc /tools/lib/gcc)
# nativeCheckInputs
tool python3 /usr/bin/python3

# --- the sandbox ---------------------------------------------------------------------
sandbox=(
  bwrap
  --unshare-all --uid 1000 --gid 100 --hostname localhost
  --die-with-parent --new-session --clearenv
  --ro-bind /usr /usr
  --tmpfs /usr/bin --tmpfs /usr/sbin
  --ro-bind "$(readlink -f "$(command -v dash || command -v bash)")" /usr/bin/sh
  --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin --symlink usr/sbin /sbin
  --dev /dev --proc /proc
  --dir /etc
  --ro-bind "$cache/etc/passwd" /etc/passwd
  --ro-bind "$cache/etc/group" /etc/group
  --ro-bind "$cache/etc/hosts" /etc/hosts
  --tmpfs /tools --ro-bind "$cache/toolchain" /tools/rust
  "${tools[@]}"
  --bind "$cache/build" /build
  --ro-bind "$cache/source" /build/source
  --bind "$cache/target" /build/target
  --ro-bind "$cache/cargo-home" /build/cargo-home
  --chdir /build/source
  --setenv PATH /tools/rust/bin:/tools/bin
  --setenv HOME /homeless-shelter
  --setenv TMPDIR /build --setenv TMP /build --setenv TEMP /build --setenv TEMPDIR /build
  --setenv NIX_BUILD_TOP /build
  --setenv CARGO_HOME /build/cargo-home
  --setenv CARGO_TARGET_DIR /build/target
  --setenv CARGO_NET_OFFLINE true
  --setenv TERM dumb
  --setenv SOURCE_DATE_EPOCH 315532800
  --setenv TABULA_SKIP_LOG /build/skips.log
)
user=()
if [ "$(id -u)" = 0 ]; then
  # as nixbld: no uid 0 outside, so nothing of the host opens by ownership
  chown -R 65534:65534 "$cache/build" "$cache/target" "$cache/source"
  user=(setpriv --reuid 65534 --regid 65534 --clear-groups --)
fi

# The derivation's postPatch runs on a writable copy before the source turns
# read-only (stdenv's patchShebangs is not on this host: shebangs of the form
# `#!/usr/bin/env NAME` become `#!/tools/bin/NAME`, what it does with a store path).
if [ -n "$post_patch" ]; then
  patch_shebangs='patchShebangs() { local f; while IFS= read -r -d "" f; do
      if head -c 2 "$f" | grep -q "^#!"; then sed -i "1s|^#! *\(/usr\)\?/bin/env \+\([^ ]*\)|#!/tools/bin/\2|" "$f"; fi
    done < <(find "${@: -1}" -type f -perm -u+x -print0); }'
  "${user[@]}" "${sandbox[@]}" --bind "$cache/source" /build/source \
    bash -euo pipefail -c "$patch_shebangs"$'\n'"$post_patch" ||
    die "the derivation's postPatch failed"
fi

# The sandbox first proves it lacks what the Nix sandbox lacks: a test that
# passes here must not have had any of it.
probe='
  problems=()
  [ "$(id -u)" = 1000 ] || problems+=("uid is $(id -u), not 1000")
  [ ! -e /usr/bin/env ] || problems+=("/usr/bin/env exists")
  [ ! -e /usr/bin/python3 ] || problems+=("/usr/bin/python3 exists")
  [ ! -e "$HOME" ] || problems+=("HOME=$HOME exists")
  [ ! -e /dev/kmsg ] || problems+=("/dev/kmsg exists")
  [ ! -e /dev/loop-control ] || problems+=("/dev/loop-control exists")
  ! touch Cargo.toml 2>/dev/null || problems+=("the source is writable")
  ! (exec 3<>/dev/tcp/1.1.1.1/53) 2>/dev/null || problems+=("the network is reachable")
  touch /build/target/.probe || problems+=("the target directory is not writable")
  if [ ${#problems[@]} -gt 0 ]; then printf "sandbox-test: not a sandbox: %s\n" "${problems[@]}" >&2; exit 1; fi'
"${user[@]}" "${sandbox[@]}" bash -c "$probe" || die "the sandbox is not what the Nix build sandbox is (see above)"

command=(cargo test --offline --locked --profile "$profile" "${test_flags[@]}" -- "${check_flags[@]}")
echo "sandbox-test: ${command[*]}  (in /build/source, read-only, as uid 1000, no network, HOME=/homeless-shelter)"
log=$cache/build-log.txt
status=0
"${user[@]}" "${sandbox[@]}" bash -euo pipefail -c "${pre_check:+$pre_check$'\n'}"'"$@"' sandbox-test "${command[@]}" 2>&1 |
  tee "$log" || status=$?

ignored=$(grep -cE '^test .* \.\.\. ignored' "$log" || true)
echo
echo "sandbox-test: $ignored test(s) ignored (#[ignore = \"needs ...\"]), left out as in the Nix check phase:"
grep -E '^test .* \.\.\. ignored' "$log" | sed 's/^test /  /' || true
# A test that skips itself (tabula_testkit::skip_unless) without being
# #[ignore]d passes in the Nix check phase without having run, and cargo shows
# nothing of it (it hides a passing test's stderr): that is a failure here.
if [ -s "$cache/build/skips.log" ]; then
  echo "sandbox-test: FAILED: $(grep -c . "$cache/build/skips.log") test(s) skipped themselves instead of being #[ignore = \"needs ...\"]:"
  sed 's/^/  /' "$cache/build/skips.log"
  [ "$status" -ne 0 ] || status=1
fi
if [ "$status" -ne 0 ]; then
  echo "sandbox-test: the package's tests FAILED in the sandbox (exit status $status); log: $log"
fi
exit "$status"
