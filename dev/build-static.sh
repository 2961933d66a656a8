#!/usr/bin/env bash
# Builds the static, stripped release binaries and prints their sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --target x86_64-unknown-linux-musl -p tabula-rollback -p tabula-generator -p tabula-cli
for bin in tabula-rollback tabula-generator tabula; do
  f=target/x86_64-unknown-linux-musl/release/$bin
  file "$f" | grep -Eq 'statically linked|static-pie linked' || { echo "$f is not static" >&2; exit 1; }
  printf '%-18s %7d bytes (%d KiB)\n' "$bin" "$(stat -c %s "$f")" "$(( $(stat -c %s "$f") / 1024 ))"
done
