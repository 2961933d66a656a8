{
  description = "tabula: boot-time root rollback (Btrfs, ZFS) and persistence for NixOS";

  # nixpkgs 25.05 or later: the workspace is Rust 2024 (rustc >= 1.85).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # One file per NixOS VM test scenario, in step with the QEMU harness
      # (vm-tests/README.md): the flake check `vm-<name>` runs vm-tests/nixos/<name>.nix.
      vmScenarios = [
        "btrfs-rotation-scripted"
        "btrfs-rotation-systemd"
        "btrfs-retention"
        "btrfs-blank-template"
        "zfs-rollback-scripted"
        "zfs-rollback-systemd"
        "zfs-keep-previous"
        "zfs-datasets"
        "persist-files-and-homes"
        "machine-id-first-boot"
        "nested-and-symlink"
        "overlay-present"
        "overlay-absent"
        "failure-policy"
        "cli-zfs"
        "several-roots-btrfs"
        "several-roots-zfs"
        "luks-btrfs-scripted"
        "luks-btrfs-systemd"
        "zfs-encrypted"
        "hibernate-resume"
      ];
    in
    {
      overlays.default = final: _prev: {
        tabula = final.pkgsStatic.callPackage ./nixos-module/package.nix { };
      };

      packages = forAllSystems (pkgs: {
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.tabula;
        tabula = pkgs.pkgsStatic.callPackage ./nixos-module/package.nix { };
        # The option reference as CommonMark (also a check).
        docs = (import ./nixos-module/docs.nix { inherit pkgs lib; }).optionsCommonMark;
      });

      nixosModules = {
        default =
          { lib, pkgs, ... }:
          {
            # deduplicated when imported twice (default and impermanence)
            key = "github:tabula-nix/tabula#nixosModules.default";
            _file = "${self}/flake.nix#nixosModules.default";
            imports = [ ./nixos-module ];
            tabula.package = lib.mkDefault (
              self.packages.${pkgs.stdenv.hostPlatform.system}.default
                or (pkgs.pkgsStatic.callPackage ./nixos-module/package.nix { })
            );
          };
        impermanence = {
          key = "github:tabula-nix/tabula#nixosModules.impermanence";
          _file = "${self}/flake.nix#nixosModules.impermanence";
          imports = [
            self.nixosModules.default
            ./nixos-module/impermanence.nix
          ];
        };
      };

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          package = self.packages.${system}.tabula;
          # clippy and rustfmt on the build platform's toolchain: no musl needed
          native = pkgs.callPackage ./nixos-module/package.nix { };
        in
        {
          inherit package;

          clippy = native.overrideAttrs (old: {
            pname = "tabula-clippy";
            nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
            buildPhase = ''
              runHook preBuild
              cargo clippy --workspace --all-targets --offline -- -D warnings
              runHook postBuild
            '';
            doCheck = false;
            installPhase = "touch $out";
            dontFixup = true;
          });

          rustfmt =
            pkgs.runCommand "tabula-rustfmt"
              {
                nativeBuildInputs = [
                  pkgs.cargo
                  pkgs.rustfmt
                ];
              }
              ''
                export CARGO_HOME=$TMPDIR/cargo
                cd ${native.src}
                cargo fmt --all --check
                touch $out
              '';

          option-docs = self.packages.${system}.docs;

          # The offline module tests of nixos-module/tests/run.sh, with this
          # nixpkgs' lib: the evaluation fails, naming the check, if one fails.
          module-eval =
            let
              results = import ./nixos-module/tests/eval.nix { inherit lib; };
              failed = lib.filter (r: !r.ok) results;
            in
            if failed == [ ] then
              pkgs.writeText "tabula-module-eval" "${toString (lib.length results)} checks passed\n"
            else
              throw "tabula module evaluation tests failed:\n${
                lib.concatMapStringsSep "\n" (r: "${r.name}: ${r.detail}") failed
              }";
        }
        # The module in a real NixOS evaluation (nixpkgs' own option types), one
        # per root layout and initrd flavour; evaluated, not built.
        // lib.mapAttrs' (
          name: module:
          lib.nameValuePair "nixos-eval-${name}" (
            pkgs.writeText "tabula-nixos-eval-${name}" (
              builtins.unsafeDiscardStringContext
                (lib.nixosSystem {
                  modules = [
                    { nixpkgs.hostPlatform = system; }
                    self.nixosModules.default
                    ./nixos-module/tests/nixos-eval-base.nix
                    module
                  ];
                }).config.system.build.toplevel.drvPath
            )
          )
        ) (import ./nixos-module/tests/nixos-eval-cases.nix)
        // lib.listToAttrs (
          map (name: {
            name = "vm-${name}";
            value = pkgs.testers.runNixOSTest (import (./vm-tests/nixos + "/${name}.nix") { inherit self; });
          }) vmScenarios
        )
      );
    };
}
