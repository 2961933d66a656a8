# The flake's outputs, evaluated against a stub nixpkgs (no store, no
# network): the module wiring, the list of checks, the VM-test scenario list
# and the configuration of every VM-test specialisation (its assertions, and
# its rendered config.json, which run.sh hands to the Rust config crate).
#
#   nix-instantiate --eval --strict --json tests/flake-outputs.nix --arg lib ... --arg repo ./.
{ lib, repo }:

let
  repoPath = /. + repo;
  flake = import (repoPath + "/flake.nix");

  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/22222222222222222222222222222222-${name}";
  };
  stubPkgs = system: rec {
    stdenv.hostPlatform.system = system;
    stdenv.buildPlatform.canExecute = _: true;
    pkgsStatic.callPackage = _: _: fakeDrv "tabula-static";
    callPackage = _: _: fakeDrv "tabula-native";
    formats.json = _: {
      generate = name: value: fakeDrv name // { inherit value; };
    };
    # the checks' builders are never forced here: only their names are read
    runCommand = name: _: _: fakeDrv name;
    writeText = name: _: fakeDrv name;
    testers.runNixOSTest = _: fakeDrv "vm-test";
    nixosOptionsDoc = _: { optionsCommonMark = fakeDrv "options.md"; };
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] stubPkgs;
  };

  self = flake.outputs { inherit self nixpkgs; } // {
    outPath = repo;
  };

  pkgs = stubPkgs "x86_64-linux";
  # nixpkgs' nixos/lib/utils.nix, as far as the modules read it
  utils.pathsNeededForBoot = (import ../lib.nix { inherit lib; }).pathsNeededForBoot;

  # nixpkgs as the flake pins it: systemd stage 1 by default, the scripted
  # initrd's options still declared (until their removal, planned for 26.11)
  base = [
    ./stubs.nix
    ./stubs-scripted.nix
    { _module.args = { inherit pkgs utils; }; }
  ];

  check = name: ok: detail: { inherit name ok detail; };

  # --- VM tests ------------------------------------------------------------------

  scenarioFiles = lib.sort lib.lessThan (
    map (lib.removeSuffix ".nix") (
      lib.filter (n: lib.hasSuffix ".nix" n && n != "common.nix") (
        lib.attrNames (builtins.readDir (repoPath + "/vm-tests/nixos"))
      )
    )
  );
  vmChecks = map (lib.removePrefix "vm-") (
    lib.filter (lib.hasPrefix "vm-") (lib.attrNames self.checks.x86_64-linux)
  );

  # What the NixOS test framework provides that the scenarios set.
  vmStubs =
    { config, lib, ... }:
    {
      options.virtualisation.fileSystems = lib.mkOption {
        type = lib.types.attrsOf lib.types.anything;
        default = { };
      };
      options.systemd.services = lib.mkOption {
        type = lib.types.attrsOf lib.types.anything;
        default = { };
      };
      # nixpkgs' luksroot.nix and initrd secrets (the LUKS scenarios)
      options.boot.initrd.luks.devices = lib.mkOption {
        type = lib.types.attrsOf lib.types.unspecified;
        default = { };
      };
      options.boot.initrd.secrets = lib.mkOption {
        type = lib.types.attrsOf lib.types.unspecified;
        default = { };
      };
      # NixOS's own, set by hibernate-resume
      options.swapDevices = lib.mkOption {
        type = lib.types.listOf lib.types.anything;
        default = [ ];
      };
      options.boot.resumeDevice = lib.mkOption {
        type = lib.types.str;
        default = "";
      };
      config.fileSystems = config.virtualisation.fileSystems;
    };

  # Every boot entry of every scenario, evaluated like NixOS would.
  specialisations = lib.concatMap (
    scenario:
    let
      test = import (repoPath + "/vm-tests/nixos/${scenario}.nix") { inherit self; };
      node = test.nodes.machine {
        inherit lib pkgs;
        config = { };
      };
    in
    lib.mapAttrsToList (name: spec: {
      name = "${scenario}/${name}";
      inherit test;
      config =
        (lib.evalModules {
          modules = base ++ [
            vmStubs
            self.nixosModules.default
            {
              boot.initrd.systemd.enable = node.boot.initrd.systemd.enable;
              users.users = node.users.users;
            }
            spec.configuration
          ];
        }).config;
    }) node.specialisation
  ) scenarioFiles;

  # --- examples/, with disko's fileSystems derived by disko-stub.nix --------------

  exampleFiles = lib.filter (lib.hasSuffix ".nix") (lib.attrNames (builtins.readDir (repoPath + "/examples")));
  examples = map (
    file:
    let
      evaluated = lib.evalModules {
        modules = base ++ [
          ./disko-stub.nix
          self.nixosModules.default
          (repoPath + "/examples/${file}")
        ];
      };
    in
    {
      name = "examples/${file}";
      inherit (evaluated) config;
      # the files that set boot.initrd.systemd.enable (not its default)
      flavourFiles = evaluated.options.boot.initrd.systemd.enable.files;
    }
  ) exampleFiles;

  # --- package.nix: the source it hands to cargo ------------------------------------
  # (lib.fileset needs Nix >= 2.14, newer than Debian's nix-bin: the file set is
  # checked as the list of paths it is built from)

  packageArgs = import (repoPath + "/nixos-module/package.nix") {
    lib = lib // {
      fileset = {
        unions = paths: paths;
        toSource = { root, fileset }: { inherit root fileset; };
      };
    };
    rustPlatform.buildRustPackage = args: args;
    python3 = null;
  };
  cargoToml = lib.importTOML (repoPath + "/Cargo.toml");
  srcPaths = map toString packageArgs.src.fileset;
  inSrc = path: lib.any (p: p == path || lib.hasPrefix "${p}/" path) srcPaths;
  missingMembers = lib.filter (m: !inSrc "${toString repoPath}/${m}") cargoToml.workspace.members;

  # --- the modules through the flake ---------------------------------------------

  viaFlake =
    (lib.evalModules {
      modules = base ++ [
        self.nixosModules.default
        { tabula.enable = true; }
      ];
    }).config;
  bothModules = builtins.tryEval (
    (lib.evalModules {
      modules = base ++ [
        self.nixosModules.default
        self.nixosModules.impermanence
        { environment.persistence."/persist".directories = [ "/var/log" ]; }
      ];
    }).config.tabula.settings.persist
  );
in
{
  results = [
    (check "flake: outputs" (
      lib.all (a: self ? ${a}) [
        "packages"
        "nixosModules"
        "overlays"
        "checks"
      ]
    ) (builtins.toJSON (lib.attrNames self)))
    (check "flake: packages.<system>.default for both systems" (
      lib.all (s: self.packages.${s}.default.name == "tabula-static") [
        "x86_64-linux"
        "aarch64-linux"
      ]
    ) "")
    (check "flake: checks list the package, clippy, rustfmt, option docs, the module tests, real NixOS evaluations" (
      lib.all (c: self.checks.x86_64-linux ? ${c}) [
        "package"
        "clippy"
        "rustfmt"
        "option-docs"
        "module-eval"
        "nixos-eval-btrfs-scripted"
        "nixos-eval-btrfs-systemd"
        "nixos-eval-zfs-scripted"
        "nixos-eval-zfs-systemd"
      ]
    ) (builtins.toJSON (lib.attrNames self.checks.x86_64-linux)))
    (check "flake: one vm-<scenario> check per vm-tests/nixos file, and no other" (
      lib.sort lib.lessThan vmChecks == scenarioFiles
    ) "checks: ${builtins.toJSON vmChecks}, files: ${builtins.toJSON scenarioFiles}")
    (check "flake: module-eval runs tests/eval.nix and passes" (
      self.checks.x86_64-linux.module-eval.name == "tabula-module-eval"
    ) "")
    (check "flake: nixosModules.default sets tabula.package from the flake" (
      viaFlake.tabula.package.name == "tabula-static"
    ) viaFlake.tabula.package.name)
    (check "flake: nixosModules.impermanence and .default imported together" (
      bothModules.success && bothModules.value != [ ]
    ) "duplicate declarations or nothing mapped")
    (check "package.nix: every workspace member is in the source (cargo loads them all)" (missingMembers == [ ]) (
      "missing: ${builtins.toJSON missingMembers}"
    ))
    (check "package.nix: every path of the source exists" (lib.all builtins.pathExists packageArgs.src.fileset) (
      builtins.toJSON srcPaths
    ))
    (check "package.nix: version from Cargo.toml, binaries built (tabula-rollback, tabula-generator, tabula)" (
      packageArgs.version == cargoToml.workspace.package.version
      && packageArgs.cargoBuildFlags == [
        "--package=tabula-rollback"
        "--package=tabula-generator"
        "--package=tabula-cli"
      ]
    ) packageArgs.version)
    (check "flake: overlays.default provides tabula" (
      (self.overlays.default pkgs { }).tabula.name == "tabula-static"
    ) "")
  ]
  ++ map (
    s:
    let
      failed = map (a: a.message) (lib.filter (a: !a.assertion) s.config.assertions);
    in
    check "vm-tests/nixos/${s.name}: no assertion fails" (failed == [ ]) (lib.concatStringsSep "\n" failed)
  ) specialisations
  ++ map (
    e:
    let
      failed = map (a: a.message) (lib.filter (a: !a.assertion) e.config.assertions);
    in
    check "${e.name}: no assertion fails, no warning" (failed == [ ] && e.config.warnings == [ ]) (
      lib.concatStringsSep "\n" (failed ++ e.config.warnings)
    )
  ) examples
  ++ [
    (check "examples: one per seed layout (btrfs, zfs, zfs per service, overlay)" (lib.length examples == 4) (builtins.toJSON exampleFiles))
    (check "examples: each that rolls back names its initrd flavour (boot.initrd.systemd.enable)" (
      lib.all (e: e.config.tabula.rollback.targets == [ ] || lib.any (lib.hasSuffix e.name) (map toString e.flavourFiles)) examples
    ) (builtins.toJSON (map (e: { inherit (e) name; files = map toString e.flavourFiles; }) examples)))
  ]
  ++ map (
    scenario:
    check "vm-tests/nixos/${scenario}: the test is named tabula-${scenario}" (
      (import (repoPath + "/vm-tests/nixos/${scenario}.nix") { inherit self; }).name == "tabula-${scenario}"
    ) ""
  ) scenarioFiles;

  # name -> rendered config.json of every VM-test boot entry
  configs = lib.listToAttrs (
    map (s: lib.nameValuePair s.name s.config.tabula.settings) (specialisations ++ examples)
  );

  scenarios = scenarioFiles;

  # name -> the Python test script the NixOS test driver runs
  testScripts = lib.genAttrs scenarioFiles (
    scenario: (import (repoPath + "/vm-tests/nixos/${scenario}.nix") { inherit self; }).testScript
  );
}
