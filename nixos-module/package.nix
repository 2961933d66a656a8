# tabula's two binaries, static (call this with a static package set:
# `pkgs.pkgsStatic.callPackage ./package.nix { }`, as the flake and the
# module do), with the workspace's cargo tests in the check phase. Tests that
# need root, loop devices or systemd-analyze skip inside the build sandbox and
# say so on stderr.
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
  # The QEMU harness is a workspace member, so its crate must be present for
  # cargo to load the workspace; it is neither built nor tested here.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../config
      ../rollback
      ../generator
      ../vm-tests/driver
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [
    "--package=tabula-rollback"
    "--package=tabula-generator"
  ];
  # Tests build in the debug profile: the release profile (LTO, one codegen
  # unit) is for the binaries only.
  checkType = "debug";
  cargoTestFlags = [
    "--package=tabula-config"
    "--package=tabula-rollback"
    "--package=tabula-generator"
  ];
  # the fake `zfs` of the rollback tests is a Python script
  nativeCheckInputs = [ python3 ];

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
