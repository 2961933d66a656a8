# tabula's binaries (tabula-rollback, tabula-generator, tabula), static (call this with a static package set:
# `pkgs.pkgsStatic.callPackage ./package.nix { }`, as the flake and the
# module do), with the workspace's cargo tests in the check phase.
#
# The check phase runs a plain `cargo test`: the tests that need what a build
# sandbox lacks (root, loop devices, /dev/kmsg, the network, a writable
# source tree, a home directory) are marked `#[ignore = "needs ..."]`, so
# cargo lists each of them as ignored, with its reason; dev/test.sh runs them
# with --include-ignored. dev/sandbox-test.sh runs this check phase in an
# emulation of the sandbox (bubblewrap) on machines without Nix.
{
  lib,
  rustPlatform,
  python3,
}:

let
  root = ../.;
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "tabula";
  inherit (cargoToml.workspace.package) version;

  # Only what cargo reads: editing the module or the docs rebuilds nothing.
  # Every workspace member, as Cargo.toml lists them (cargo loads them all,
  # also the QEMU harness, which is neither built nor tested here).
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions (
      [
        ../Cargo.toml
        ../Cargo.lock
      ]
      ++ map (member: root + "/${member}") cargoToml.workspace.members
    );
  };
  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [
    "--package=tabula-rollback"
    "--package=tabula-generator"
    "--package=tabula-cli"
  ];
  # Tests build in the debug profile: the release profile (LTO, one codegen
  # unit) is for the binaries only.
  checkType = "debug";
  cargoTestFlags = [
    "--package=tabula-config"
    "--package=tabula-runtime"
    "--package=tabula-btrfs"
    "--package=tabula-rollback"
    "--package=tabula-generator"
    "--package=tabula-cli"
  ];
  # the fake `zfs` of the rollback tests is a Python script
  nativeCheckInputs = [ python3 ];
  # Test helpers run as programs: the sandbox has no /usr/bin/env, and the
  # cargo hooks do not patch shebangs.
  postPatch = ''
    patchShebangs --build rollback/tests
  '';
  preCheck = ''
    echo "tabula: tests that need root, loop devices, /dev/kmsg or the network are left out here; cargo lists each as ignored, with its need. dev/test.sh runs them."
  '';

  # The binaries go into initrds: a store reference would drag its closure
  # along, so there must be none.
  allowedReferences = [ ];

  meta = {
    description = "Boot-time root rollback (Btrfs, ZFS) and persistence for NixOS";
    homepage = "https://github.com/tabula-nix/tabula";
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "tabula-rollback";
    platforms = lib.platforms.linux;
  };
}
