#!/usr/bin/env bash
# Offline checks of the Nix side of tabula, runnable without a Nix store or
# network (Debian's nix-bin is enough):
#
#   1. `nix-instantiate --parse` on every .nix file of the repository, and
#      deadnix (no unused binding) over them; the VM tests' old-root name
#      rule (vm-tests/nixos/old_root_name.py) against config/rules.json;
#   2. the module evaluation tests (tests/eval.nix) with nixpkgs' lib;
#   3. escapeSystemdPath (lib.nix) against the host's systemd-escape;
#   4. the flake's outputs, the VM-test scenario list (against the QEMU
#      harness's) and every VM-test boot entry, evaluated with a stub nixpkgs;
#   5. every config.json rendered above, checked by the Rust config crate,
#      and by the build-time check the module puts into system.checks
#      (tabula-rollback and tabula-generator --check-config), which must also
#      fail on a bad file;
#   6. and turned into units by tabula-generator (stage 2 and initrd), which
#      `systemd-analyze verify` accepts.
#
# nixpkgs' lib comes from NIXPKGS_LIB: a directory holding lib/default.nix (a
# nixpkgs checkout, or nix-community/nixpkgs.lib), or lib itself. Without it
# only step 1 runs and every other group is skipped, loudly: on stderr, in
# the closing line, and as one line per skipped group in the file named by
# TABULA_SKIP_LOG when that is set (dev/test.sh counts them in its summary).
# With CI=true a skipped group is a failure, except for the groups that need
# nixpkgs' lib: it is not in any package registry our CI machines reach, so
# there they are skipped and counted, never silently passed.
#
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
module=$(dirname "$here")
repo=$(dirname "$module")
cache=$here/.cache

passed=0
failed=0
skipped=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { # skip GROUP WHY [unreachable]: "unreachable" when CI cannot install it either
  skipped=$((skipped + 1))
  printf 'SKIPPED: %s: %s\n' "$1" "$2" >&2
  if [ -n "${TABULA_SKIP_LOG:-}" ]; then printf 'nixos-module/tests/run.sh %s: %s\n' "$1" "$2" >>"$TABULA_SKIP_LOG"; fi
  if [ "${CI:-}" = true ] && [ "${3:-}" != unreachable ]; then fail "$1 cannot run here ($2); in CI (CI=true) a skip is a failure"; fi
}
finish() {
  [ "$skipped" -gt 0 ] && printf '%s check group(s) SKIPPED, see the SKIPPED lines above\n' "$skipped" >&2
  printf '%s passed, %s failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
  exit
}

# --- nix-instantiate -----------------------------------------------------------
if ! command -v nix-instantiate >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's nix-bin for nix-instantiate" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >/dev/null 2>&1; }
  fi
fi
if ! command -v nix-instantiate >/dev/null; then
  fail "nix-instantiate is not installed (apt-get install nix-bin); nothing could be checked"
  finish
fi
# Evaluation only: no store, no daemon, no channels.
export NIX_REMOTE="${NIX_REMOTE:-}" NIX_PATH='' NIX_CONFIG="${NIX_CONFIG:-}"
export NIX_STATE_DIR=$cache/nix-state NIX_LOG_DIR=$cache/nix-log
mkdir -p "$NIX_STATE_DIR" "$NIX_LOG_DIR"
nixi() { nix-instantiate --readonly-mode "$@"; }

# --- 1. every .nix file parses ---------------------------------------------------
mapfile -t nix_files < <(cd "$repo" && find . -name '*.nix' -not -path './.git/*' -not -path './target/*' \
  -not -path '*/.cache/*' -not -path './vm-tests/.cache/*' | sort)
for f in "${nix_files[@]}"; do
  if out=$(nixi --parse "$repo/$f" 2>&1 >/dev/null); then pass "parses: ${f#./}"
  else fail "parses: ${f#./}: $out"; fi
done

# --- 1b. deadnix: no unused binding, argument or pattern ---------------------------
# (cargo install --locked deadnix: about 30 s of CPU, 2.5 min on a busy
# 2-core machine; installed here as root like nix-bin above)
deadnix_version=1.3.1
deadnix=$(command -v deadnix || true)
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
[ -n "$deadnix" ] || [ ! -x "$cargo_bin/deadnix" ] || deadnix=$cargo_bin/deadnix
if [ -z "$deadnix" ] && [ "$(id -u)" = 0 ] && command -v cargo >/dev/null; then
  echo "installing deadnix $deadnix_version (cargo install --locked)" >&2
  cargo install -q --locked "deadnix@$deadnix_version" >&2 && deadnix=$cargo_bin/deadnix
fi
if [ -n "$deadnix" ]; then
  if out=$(cd "$repo" && "$deadnix" --fail --output-format json "${nix_files[@]}" 2>&1); then
    pass "deadnix: no unused binding in ${#nix_files[@]} .nix files"
  else
    fail "deadnix: $(printf '%s\n' "$out" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        d = json.loads(line)
    except ValueError:
        print(line.strip()); continue
    for r in d.get("results", []):
        print("%s:%s %s;" % (d["file"], r["line"], r["message"]), end=" ")
')"
  fi
else
  skip "deadnix over the .nix files" "deadnix is not installed (cargo install --locked deadnix@$deadnix_version)"
fi

# --- 1c. the VM tests' old-root names against the shared table ---------------------
# The NixOS VM tests recognise old roots in Python (vm-tests/nixos/old_root_name.py);
# the config crate's tests hold the crate to the same cases (config/rules.json
# oldRootName), so the two cannot drift apart.
if verdict=$(python3 - "$repo/vm-tests/nixos/old_root_name.py" "$repo/config/rules.json" 2>&1 <<'EOF'
import json, runpy, sys
is_old_root_name = runpy.run_path(sys.argv[1])["is_old_root_name"]
table = json.load(open(sys.argv[2]))["oldRootName"]
wrong = ["must %s %r" % (side, case) for side in ("accept", "refuse") for case in table[side]
         if is_old_root_name(case) != (side == "accept")]
print("; ".join(wrong) if wrong else "same %d" % (len(table["accept"]) + len(table["refuse"])))
EOF
); then
  case "$verdict" in
    same*) pass "old-root names: the VM tests' is_old_root_name decides all ${verdict#same } oldRootName cases of config/rules.json as the config crate does" ;;
    *) fail "old-root names: vm-tests/nixos/old_root_name.py differs from config/rules.json: $verdict" ;;
  esac
else fail "old-root names: could not check vm-tests/nixos/old_root_name.py: $verdict"; fi

# --- nixpkgs lib -------------------------------------------------------------------
lib_dir=
if [ -n "${NIXPKGS_LIB:-}" ]; then
  if [ -f "$NIXPKGS_LIB/lib/default.nix" ]; then lib_dir=$NIXPKGS_LIB/lib
  elif [ -f "$NIXPKGS_LIB/default.nix" ]; then lib_dir=$NIXPKGS_LIB
  else fail "NIXPKGS_LIB=$NIXPKGS_LIB holds neither lib/default.nix nor default.nix"; finish; fi
fi
if [ -z "$lib_dir" ]; then
  why="no nixpkgs lib; set NIXPKGS_LIB to a nixpkgs checkout or a clone of github.com/nix-community/nixpkgs.lib"
  for group in "module evaluation tests (tests/eval.nix)" "impermanence corpus tests (tests/corpus.nix)" \
    "impermanence modes vs GNU mkdir --mode" "escapeSystemdPath vs systemd-escape" \
    "flake outputs and VM-test boot entries (tests/flake-outputs.nix)" "rendered config.json vs docs/config.md" \
    "rendered config.json vs the Rust binaries" "the build-time config check (check.nix)" \
    "rendered config.json through tabula-generator"; do
    skip "$group" "$why" unreachable
  done
  finish
fi
echo "nixpkgs lib: $lib_dir ($(nixi --eval -E "(import $lib_dir).version" 2>/dev/null))"

# [ { name; ok; detail; } ] (or { results = [...]; }) on stdin -> pass/fail lines
report_results() {
  local ok name detail
  while IFS=$'\t' read -r ok name detail; do
    if [ "$ok" = 1 ]; then pass "$name"; else fail "$name: $detail"; fi
  done < <(python3 -c '
import json, sys
doc = json.load(sys.stdin)
for c in doc["results"] if isinstance(doc, dict) else doc:
    print("1" if c["ok"] else "0", c["name"], c["detail"].replace("\t", " ").replace("\n", "\\n"), sep="\t")
')
}

# --- 2. module evaluation tests ----------------------------------------------------
if json=$(nixi --eval --strict --json "$here/eval.nix" --arg lib "import $lib_dir" 2>"$cache/eval.err"); then
  report_results <<<"$json"
else
  fail "module evaluation tests did not evaluate: $(tail -n 20 "$cache/eval.err")"
fi

# --- 2b. real impermanence configurations, compared with impermanence ------------------
if json=$(nixi --eval --strict --json "$here/corpus.nix" --arg lib "import $lib_dir" 2>"$cache/corpus.err"); then
  report_results <<<"$json"
  python3 -c '
import json, sys
s = json.load(sys.stdin)["summary"]
print("impermanence corpus: %d of %d configurations behave exactly as under impermanence in both initrd flavours" % (s["equivalent"], s["configurations"]))
print("  not counting when files other than /etc/machine-id are mounted (NixOS activation or stage 2): %d" % s["equivalentButFileTiming"])
e = s["equivalentForExistingData"]
print("  not counting how a missing file source is created: %d in both flavours, %d with systemd stage 1, %d with the scripted initrd" % (e["both"], e["systemd"], e["scripted"]))
for name, c in sorted(s["classes"].items()):
    print("  %-26s %2d configurations%s: %s" % (name, c["configurations"], "" if c["known"] else " (NOT DOCUMENTED)", c["why"]))
' <<<"$json"
else
  fail "impermanence corpus tests (tests/corpus.nix) did not evaluate: $(tail -n 20 "$cache/corpus.err")"
fi

# --- 2c. symbolic modes: the same octal mode as GNU mkdir --mode, or refused --------------
modes=(u=rwx,g=rx,o= u=rwx,g=,o= u=rwx,g=rx,o=rx go-rwx a+r g+w o-x +w -w =rx a= u=rwX,go=rX u+x-w
  ug=rwx,o= go= a-rwx u=rw,g=r,o=r 0700 755 0755 700 0 g=u u+s +t o+t '' 0999 1777 u=rwx\; xyz 'u=rwx, g=rx')
if command -v mkdir >/dev/null && mkdir --version 2>/dev/null | grep -q GNU; then
  python3 -c 'import json,sys; json.dump(sys.argv[2:], open(sys.argv[1], "w"))' "$cache/modes.json" "${modes[@]}"
  ours=$(nixi --eval --strict --json -E "let lib = import $lib_dir; c = import $module/impermanence-lib.nix { inherit lib; }; in map c.mkdirMode (builtins.fromJSON (builtins.readFile $cache/modes.json))" 2>"$cache/modes.err")
  scratch=$(mktemp -d "$cache/modes.XXXXXX")
  theirs=()
  for m in "${modes[@]}"; do
    rm -rf "$scratch/d"
    if (umask 022 && mkdir --mode="$m" "$scratch/d" 2>/dev/null); then theirs+=("$(stat -c %a "$scratch/d")"); else theirs+=(refused); fi
  done
  rm -rf "$scratch"
  verdict=$(python3 -c '
import json, sys
modes = json.load(open(sys.argv[1])); ours = json.loads(sys.argv[2] or "null"); theirs = sys.argv[3:]
if ours is None:
    print("our modes did not evaluate: " + open(sys.argv[1].replace(".json", ".err")).read()[-300:]); sys.exit()
bad = []
for m, o, t in zip(modes, ours, theirs):
    t = t if t == "refused" else "%04o" % int(t, 8)
    if o is not None and o != t:
        bad.append("%r: ours %s, mkdir %s" % (m, o, t))
refused = sum(o is None for o in ours)
print("; ".join(bad) if bad else "same %d %d" % (len(modes) - refused, refused))
' "$cache/modes.json" "$ours" "${theirs[@]}" 2>&1)
  case "$verdict" in
    same*) read -r _ same refused <<<"$verdict"; pass "impermanence modes: $same modes give what GNU mkdir --mode gives (umask 0022), $refused are refused, none differs" ;;
    *) fail "impermanence modes differ from GNU mkdir --mode: $verdict" ;;
  esac
else
  skip "impermanence modes vs GNU mkdir --mode" "GNU mkdir is not installed"
fi

# --- 3. escapeSystemdPath == systemd-escape --path -------------------------------------
if command -v systemd-escape >/dev/null; then
  corpus=$cache/escape-corpus.json
  python3 - "$corpus" <<'EOF'
import json, random, sys
rnd = random.Random(20261122)
alphabet = "abcXYZ019_:.-@ \\!\"#$%&'()*+,;<=>?[]^`{|}~"
paths = ["/", "/dev/disk/by-label/nixos", "/dev/disk/by-label/NIX_SSD", "/dev/mapper/crypt-root",
         "/dev/disk/by-partlabel/disk-main-root", "/dev/disk/by-id/nvme-Samsung_SSD_980_1TB_S64ANS0T-part2",
         "/.hidden/x", "/a/.b", "/-dash", "/mnt/nix-ssd", "/nix/store", "/home/alice/.ssh"]
while len(paths) < 2000:
    comps = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12))) for _ in range(rnd.randint(1, 5))]
    if any(c in (".", "..") for c in comps):
        continue
    paths.append("/" + "/".join(comps))
json.dump(paths, open(sys.argv[1], "w"))
EOF
  mapfile -d '' -t paths < <(python3 -c 'import json,sys; sys.stdout.write("\0".join(json.load(open(sys.argv[1]))) + "\0")' "$corpus")
  nixi --eval --strict --json -E "let lib = import $lib_dir; t = import $module/lib.nix { inherit lib; }; in map t.escapeSystemdPath (builtins.fromJSON (builtins.readFile $corpus))" \
    >"$cache/escape-ours.json" 2>"$cache/escape-ours.err"
  systemd-escape --path -- "${paths[@]}" >"$cache/escape-theirs.txt" 2>&1
  verdict=$(python3 - "$corpus" "$cache/escape-ours.json" "$cache/escape-theirs.txt" "$cache/escape-ours.err" <<'EOF'
import json, sys
paths = json.load(open(sys.argv[1]))
try:
    ours = json.load(open(sys.argv[2]))
except ValueError:
    print("our escaping did not evaluate:", open(sys.argv[4]).read()[-300:]); sys.exit()
theirs = open(sys.argv[3]).read().split()  # one line, space-separated; escaped names hold no space
bad = [(p, o, t) for p, o, t in zip(paths, ours, theirs) if o != t]
if len(ours) != len(paths) or len(theirs) != len(paths):
    print("length mismatch: %d paths, %d ours, %d from systemd-escape" % (len(paths), len(ours), len(theirs)))
elif bad:
    print("%d differ, e.g. %r: ours %r, systemd-escape %r" % ((len(bad),) + bad[0]))
else:
    print("same")
EOF
)
  if [ "$verdict" = same ]; then pass "escapeSystemdPath equals systemd-escape --path on ${#paths[@]} paths"
  else fail "escapeSystemdPath vs systemd-escape: $verdict"; fi
else
  skip "escapeSystemdPath vs systemd-escape" "systemd-escape is not installed (apt-get install systemd)"
fi

# --- 4. the flake, evaluated with a stub nixpkgs -------------------------------------
rendered=$cache/rendered
rm -rf "$rendered" && mkdir -p "$rendered"
if json=$(nixi --eval --strict --json "$here/flake-outputs.nix" --arg lib "import $lib_dir" --arg repo "$repo" 2>"$cache/flake.err"); then
  report_results <<<"$json"
  # every VM-test boot entry's config.json, for step 5
  python3 -c '
import json, sys
for name, settings in json.load(sys.stdin)["configs"].items():
    with open("%s/%s.json" % (sys.argv[1], name.replace("/", "--")), "w") as f:
        json.dump(settings, f, indent=2)
' "$rendered" <<<"$json"
  # the VM tests' Python: syntax, and no name the test driver does not define
  if verdicts=$(python3 -c '
import ast, builtins, json, re, sys
driver = {"machine", "machines", "subtest", "start_all", "driver", "log", "serial_stdout_off", "serial_stdout_on", "retry", "polling_condition"}
for name, script in json.load(sys.stdin)["testScripts"].items():
    try:
        tree = ast.parse(script, name)
    except SyntaxError as e:
        print("0\t%s\tline %s: %s" % (name, e.lineno, e.msg)); continue
    bound = set(dir(builtins)) | driver
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)): bound.add(node.name)
        elif isinstance(node, ast.arg): bound.add(node.arg)
        elif isinstance(node, ast.alias): bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)): bound.add(node.id)
    unbound = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in bound})
    # the driver runs commands under pipefail: `... | grep -q` fails with SIGPIPE
    # whether or not the line is there; the output is checked in Python instead
    piped = sorted({n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and re.search(r"\|\s*grep\b", n.value)})
    problems = (["undefined: " + ", ".join(unbound)] if unbound else []) + (["pipes into grep in the guest: %r" % piped[0]] if piped else [])
    print("%d\t%s\t%s" % (not problems, name, "; ".join(problems)))
' <<<"$json"); then
    while IFS=$'\t' read -r ok name detail; do
      if [ "$ok" = 1 ]; then pass "vm-tests/nixos/$name: test script parses, every name defined, no output piped into grep"
      else fail "vm-tests/nixos/$name: test script: $detail"; fi
    done <<<"$verdicts"
  else fail "could not check the VM test scripts"; fi
  # the QEMU harness runs the same scenarios (vm-tests/driver/src/scenarios/mod.rs)
  harness=$repo/vm-tests/driver/src/scenarios/mod.rs
  if [ -f "$harness" ]; then
    mapfile -t ours < <(python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["scenarios"]))' <<<"$json")
    mapfile -t theirs < <(grep -oE 'name: "[a-z0-9-]+"' "$harness" | sed 's/name: "\(.*\)"/\1/')
    # (a loop, not `printf | grep -q`: under pipefail grep's early exit
    # can fail printf with SIGPIPE and report a name as missing)
    listed() { local x want=$1; shift; for x in "$@"; do [ "$x" = "$want" ] && return 0; done; return 1; }
    missing=()
    for t in "${theirs[@]}"; do
      case "$t" in btrfs-rotation-*|btrfs-retention|btrfs-blank-template|zfs-rollback-*|zfs-keep-previous|zfs-datasets|persist-files-and-homes|machine-id-first-boot|nested-and-symlink|cli-zfs|overlay-*|several-roots-*|luks-btrfs-*|zfs-encrypted)
        listed "$t" "${ours[@]}" || missing+=("$t") ;;
      # one NixOS test for both: one machine per initrd flavour, or per filesystem
      hibernate-resume-*)
        listed hibernate-resume "${ours[@]}" || missing+=("$t") ;;
      failure-policy-*)
        listed failure-policy "${ours[@]}" || missing+=("$t") ;;
      esac
    done
    if [ ${#missing[@]} -eq 0 ]; then pass "every mirrored QEMU harness scenario has a NixOS VM test of the same name"
    else fail "QEMU harness scenarios without a NixOS VM test of the same name: ${missing[*]}"; fi
    notyet=()
    for o in "${ours[@]}"; do
      listed "$o" "${theirs[@]}" || listed "$o-scripted" "${theirs[@]}" || listed "$o-btrfs" "${theirs[@]}" || notyet+=("$o")
    done
    [ ${#notyet[@]} -eq 0 ] || echo "note: NixOS VM tests the QEMU harness does not run (yet): ${notyet[*]}" >&2
  else
    skip "scenario lists in step" "no QEMU harness scenario list at ${harness#"$repo"/}"
  fi
else
  fail "flake checks did not evaluate: $(tail -n 20 "$cache/flake.err")"
fi

# --- 5a. every rendered object has exactly the keys docs/config.md documents ----------
if verdict=$(python3 - "$repo/docs/config.md" "$here"/expected/*.json "$rendered"/*.json <<'EOF'
import json, re, sys
doc = open(sys.argv[1]).read()
tables, heading, current = {}, None, None
for line in doc.splitlines():
    if line.startswith("## "):
        heading, current = line[3:].strip(), None
        continue
    m = re.match(r"\|\s*((?:`[^`]+`(?:,\s*)?)+)\s*\|", line)
    if m and heading:
        if current is None:
            current = []
            tables.setdefault(heading, []).append(current)
        current.extend(re.findall(r"`([^`]+)`", m.group(1)))
    elif not line.startswith("|"):
        current = None
def table(prefix, index=0):
    for h, ts in tables.items():
        if h.startswith(prefix):
            return set(ts[index])
    sys.exit("docs/config.md has no table under a heading starting with %r" % prefix)
want = {
    "top": table("Top level"),
    "btrfs": table('`rollback[]`, `"type": "btrfs"`'),
    "zfs": table('`rollback[]`, `"type": "zfs"`'),
    "keep": table("Keep policy"),
    "storage": table("`persist[]`", 0),
    "entry": table("`persist[]`", 1),
    "user": table("`persist[]`", 2),
    "overlay": table("`overlays[]`"),
}
problems, objects = [], 0
def same(what, obj, where):
    global objects
    objects += 1
    if set(obj) != want[what]:
        problems.append("%s: %s keys %s, documented %s" % (where, what, sorted(obj), sorted(want[what])))
for path in sys.argv[2:]:
    c = json.load(open(path))
    name = path.rsplit("/", 1)[1]
    same("top", c, name)
    for i, t in enumerate(c["rollback"]):
        same(t["type"], t, "%s rollback[%d]" % (name, i))
        same("keep", t["keep"], "%s rollback[%d].keep" % (name, i))
    for i, s in enumerate(c["persist"]):
        same("storage", s, "%s persist[%d]" % (name, i))
        entries = s["directories"] + s["files"]
        for u, v in s["users"].items():
            same("user", v, "%s persist[%d].users.%s" % (name, i, u))
            entries += v["directories"] + v["files"]
        for e in entries:
            if isinstance(e, dict):
                objects += 1
                if "path" not in e or not set(e) <= want["entry"]:
                    problems.append("%s persist[%d]: entry keys %s, documented %s" % (name, i, sorted(e), sorted(want["entry"])))
    for i, o in enumerate(c["overlays"]):
        same("overlay", o, "%s overlays[%d]" % (name, i))
print("; ".join(problems[:5]) if problems else "same %d" % objects)
EOF
); then
  case "$verdict" in
    same*) pass "every rendered object has exactly the keys docs/config.md documents (${verdict#same } objects)" ;;
    *) fail "rendered keys differ from docs/config.md: $verdict" ;;
  esac
else fail "could not compare with docs/config.md: $verdict"; fi

# --- 5. the rendered files pass the Rust contract -------------------------------------
if command -v cargo >/dev/null; then
  bad=$cache/refused.json
  printf '{"version":1,"rollback":[{"type":"btrfs","device":"dev/sda","subvolume":"@root","oldRoots":null}]}\n' >"$bad"
  files=("$here"/expected/*.json "$rendered"/*.json)
  if out=$(cd "$repo" && cargo run -q --locked -p tabula-config --example check -- "${files[@]}" 2>&1); then
    pass "tabula-config accepts every rendered config.json (${#files[@]}: expected/*.json and every VM-test boot entry)"
  else fail "tabula-config refuses a rendered config: $out"; fi
  if out=$(cd "$repo" && cargo run -q --locked -p tabula-config --example check -- "$bad" 2>&1); then
    fail "tabula-config's check accepted a relative device path: $out"
  else pass "tabula-config's check refuses a bad file (so the check above can fail)"; fi
else
  skip "rendered config.json vs the Rust binaries" "cargo is not installed"
fi

# --- 5b. the build-time check (check.nix), run with the binaries of this checkout -------
# The script the module puts into system.checks, with its store paths
# replaced: it must pass every rendered file and fail on a bad one.
if ! command -v cargo >/dev/null; then
  skip "the build-time config check (check.nix)" "cargo is not installed"
elif ! grep -rqF -- '--check-config' "$repo/rollback/src" || ! grep -rqF -- '--check-config' "$repo/generator/src"; then
  skip "the build-time config check (check.nix)" "tabula-rollback or tabula-generator has no --check-config in this checkout"
elif ! json=$(nixi --eval --strict --json "$here/build-check.nix" --arg lib "import $lib_dir" 2>"$cache/build-check.err"); then
  fail "the build-time config check did not evaluate: $(tail -n 20 "$cache/build-check.err")"
elif ! (cd "$repo" && cargo build -q --locked -p tabula-rollback -p tabula-generator 2>"$cache/check-build.err"); then
  fail "the build-time config check: the binaries do not build: $(tail -n 5 "$cache/check-build.err")"
else
  target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  pkg=$cache/check-package
  rm -rf "$pkg" && mkdir -p "$pkg/bin"
  ln -s "$target/debug/tabula-rollback" "$target/debug/tabula-generator" "$pkg/bin/"
  field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1])[sys.argv[2]]; print(v if isinstance(v, str) else json.dumps(v))' "$json" "$1"; }
  script=$(field script)
  script=${script//"$(field package)"/$pkg}
  field bad >"$cache/check-bad.json"
  run_check() { # run_check FILE: the module's script on FILE; its output
    local out=$cache/check-out
    rm -f "$out"
    out=$out bash -euo pipefail -c "${script//"$(field configFile)"/$1}" 2>&1
  }
  refused=()
  for f in "$here"/expected/*.json "$rendered"/*.json; do
    run_check "$f" >"$cache/check.log" || refused+=("$(basename "$f"): $(head -n 3 "$cache/check.log" | tr '\n' ' ')")
  done
  if [ ${#refused[@]} -eq 0 ]; then
    pass "the build-time config check (system.checks: tabula-rollback and tabula-generator --check-config) passes every rendered config.json"
  else fail "the build-time config check refuses rendered configs: ${refused[*]}"; fi
  if out=$(run_check "$cache/check-bad.json"); then
    fail "the build-time config check passed a config with zfsCommand = \"bin/zfs\": $out"
  elif grep -q 'zfsCommand' <<<"$out" && grep -q 'tabula-rollback refuses' <<<"$out" && grep -q 'tabula-generator refuses' <<<"$out"; then
    pass "the build-time config check fails on a rendered config with zfsCommand = \"bin/zfs\", both binaries naming the field"
  else fail "the build-time config check failed on the bad config, but not as expected: $out"; fi
fi

# --- 6. the generator turns every rendered file into units systemd accepts -------------
if command -v cargo >/dev/null && (cd "$repo" && cargo build -q --locked -p tabula-generator 2>"$cache/generator-build.err"); then
  generator=$(cd "$repo" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/tabula-generator
  have_verify=1
  command -v systemd-analyze >/dev/null || { have_verify=0; skip "systemd-analyze verify of the emitted units" "systemd-analyze is not installed"; }
  for f in "$here"/expected/*.json "$rendered"/*.json; do
    for stage in stage2 initrd; do
      out=$(mktemp -d "$cache/generator.XXXXXX")
      mkdir -p "$out/normal" "$out/early" "$out/late" "$out/root/etc/tabula"
      cp "$f" "$out/root/etc/tabula/config.json"
      # An entry whose own dataset is the default child of its storage's
      # dataset: the generator reads that dataset from /etc/fstab, which the
      # rendered file does not carry. Every such storage S stands here on
      # rpool/safe/S, as in the ZFS layouts of these tests (/persist on
      # rpool/safe/persist).
      python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
def default(e):
    return isinstance(e, dict) and isinstance(e.get("zfs"), dict) and e["zfs"].get("dataset") is None
for s in c.get("persist", []):
    entries = s["directories"] + [e for u in s["users"].values() for e in u["directories"]]
    if any(default(e) for e in entries):
        print("rpool/safe%s %s zfs defaults 0 0" % (s["storage"], s["storage"]))
' "$f" >"$out/root/etc/fstab"
      [ "$stage" = initrd ] && : >"$out/root/etc/initrd-release"
      name="generator ($stage) accepts $(basename "$f")"
      if TABULA_GENERATOR_ROOT=$out/root \
        "$generator" "$out/normal" "$out/early" "$out/late" 2>"$out/stderr"; then
        mapfile -t units < <(find "$out/normal" "$out/early" "$out/late" -maxdepth 1 -type f \( -name '*.mount' -o -name '*.service' \))
        if [ "$have_verify" = 1 ] && [ ${#units[@]} -gt 0 ]; then
          if verify=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "${units[@]}" 2>&1) && [ -z "$verify" ]; then
            pass "$name; systemd-analyze verify: ${#units[@]} units clean"
          else fail "$name, but systemd-analyze verify says: $(printf '%s' "$verify" | head -n 5 | tr '\n' ' ')"; fi
        else pass "$name (${#units[@]} units)"; fi
      else
        fail "generator ($stage) refuses $(basename "$f"): $(tr '\n' ' ' <"$out/stderr") (exit status $?)"
      fi
      rm -rf "$out"
    done
  done
else
  skip "rendered config.json through tabula-generator" "cargo is missing or tabula-generator does not build ($(tail -n 3 "$cache/generator-build.err" 2>/dev/null | tr '\n' ' '))"
fi

finish
