# Module evaluation tests: the tabula module (and the impermanence
# compatibility module) evaluated with nixpkgs' lib.evalModules next to stub
# declarations of the NixOS options it touches (stubs.nix), for the layouts of
# the user's seeds. Each case checks the rendered JSON against a golden file
# (expected/<case>.json), the initrd wiring of its flavour, the generator
# wiring, and the assertions and warnings that must (or must not) fire.
#
#   nix-instantiate --eval --strict --json tests/eval.nix --arg lib 'import <nixpkgs/lib>'
#
# returns [ { name; ok; detail; } ], one per check; run.sh prints them.
{ lib }:

let
  tabulaLib = import ../lib.nix { inherit lib; };

  stub = import ./stub-pkgs.nix;
  inherit (stub) package;
  rollbackBin = "${package.outPath}/bin/tabula-rollback";
  generatorBin = "${package.outPath}/bin/tabula-generator";

  pkgs = stub.pkgs // {
    callPackage = _: _: throw "tests set tabula.package";
  };

  # nixpkgs' nixos/lib/utils.nix, as far as the modules read it
  utils.pathsNeededForBoot = tabulaLib.pathsNeededForBoot;

  # The initrd flavours every evaluation names explicitly: which stubs stand
  # for nixpkgs, and the value of boot.initrd.systemd.enable.
  #   scripted        a nixpkgs with the scripted initrd, and it is used
  #   systemd         the same nixpkgs, systemd stage 1 (the default since 26.05)
  #   systemd-only    a nixpkgs whose scripted initrd options are gone (26.11)
  #   scripted-gone   that nixpkgs, with the scripted initrd asked for anyway
  flavours = {
    scripted = {
      stubs = [ ./stubs.nix ./stubs-scripted.nix ];
      systemd = false;
    };
    systemd = {
      stubs = [ ./stubs.nix ./stubs-scripted.nix ];
      systemd = true;
    };
    systemd-only = {
      stubs = [ ./stubs.nix ];
      systemd = true;
    };
    scripted-gone = {
      stubs = [ ./stubs.nix ];
      systemd = false;
    };
  };

  # `module` (the tabula module, or the impermanence compatibility module
  # that imports it) with the stubs of `flavour` and a fixed package, plus
  # `modules`.
  evalWith =
    module: flavour: modules:
    lib.evalModules {
      modules =
        flavours.${flavour}.stubs
        ++ [
          module
          {
            _module.args = { inherit pkgs utils; };
            tabula.package = package;
            boot.initrd.systemd.enable = flavours.${flavour}.systemd;
          }
        ]
        ++ modules;
    };
  eval = evalWith ../default.nix;
  evalCompat = flavour: modules: (evalWith ../impermanence.nix flavour modules).config;

  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  golden =
    name:
    let
      file = ./expected + "/${name}.json";
    in
    if builtins.pathExists file then builtins.fromJSON (builtins.readFile file) else null;

  # --- the user's layouts ------------------------------------------------------

  # seed 001: Btrfs, flat @subvolumes, @old_roots, 30 days.
  btrfsLayout =
    { ... }:
    let
      device = "/dev/disk/by-label/nixos";
      sub = name: extra: {
        inherit device;
        fsType = "btrfs";
        options = [
          "subvol=${name}"
          "compress=zstd:3"
          "noatime"
        ]
        ++ extra;
      };
    in
    {
      fileSystems."/" = sub "@root" [ ];
      fileSystems."/nix" = sub "@nix" [ ];
      fileSystems."/persist" = sub "@persist" [ ] // {
        neededForBoot = true;
      };
      fileSystems."/var/log" = sub "@log" [ ] // {
        neededForBoot = true;
      };
      fileSystems."/boot" = {
        device = "/dev/disk/by-label/ESP";
        fsType = "vfat";
      };
      tabula.enable = true;
      tabula.rollback.targets = [
        {
          type = "btrfs";
          inherit device;
          mountOptions = [ "compress=zstd:3" ];
        }
      ];
      tabula.persist."/persist" = {
        hideMounts = true;
        directories = [
          "/var/lib/nixos"
          "/etc/nixos"
          {
            path = "/var/lib/bluetooth";
            mode = "0700";
          }
        ];
        files = [ "/etc/ssh/ssh_host_ed25519_key" ];
      };
    };

  # seeds 000 and 003: ZFS, rpool/local (erased) and rpool/safe (kept), @blank.
  zfsLayout =
    { ... }:
    {
      fileSystems."/" = {
        device = "rpool/local/root";
        fsType = "zfs";
      };
      fileSystems."/nix" = {
        device = "rpool/local/nix";
        fsType = "zfs";
      };
      fileSystems."/persist" = {
        device = "rpool/safe/persist";
        fsType = "zfs";
        neededForBoot = true;
      };
      fileSystems."/home" = {
        device = "rpool/safe/home";
        fsType = "zfs";
      };
      tabula.enable = true;
      tabula.rollback.targets = [
        {
          type = "zfs";
          dataset = "rpool/local/root";
        }
      ];
      tabula.persist."/persist".directories = [
        "/var/lib/nixos"
        "/etc/ssh"
        "/var/lib/bluetooth"
        "/var/lib/systemd/coredump"
      ];
    };

  # nixpkgs' zfs.nix imports the root pools from postResumeCommands at the
  # default priority; tabula's mkAfter must land after it.
  nixpkgsZfsImport = {
    boot.initrd.postResumeCommands = ''
      echo -n "importing root ZFS pool \"rpool\"..."   # nixpkgs zfs.nix
    '';
  };

  # --- checks ------------------------------------------------------------------

  check = name: ok: detail: { inherit name ok detail; };
  checkEq =
    name: actual: expected:
    check name (actual == expected) "expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";
  checkHas =
    name: list: x:
    check name (builtins.elem x list) "expected ${builtins.toJSON x} in ${builtins.toJSON list}";
  checkInfix =
    name: needle: haystack:
    check name (lib.hasInfix needle haystack) "expected ${builtins.toJSON needle} in ${builtins.toJSON haystack}";
  checkNoAssertions =
    name: config:
    let
      failed = failedAssertions config;
    in
    check "${name}: no assertion fails" (failed == [ ]) (lib.concatStringsSep "\n" failed);
  checkGolden =
    name: config:
    checkEq "${name}: rendered config.json equals expected/${name}.json" config.tabula.settings (
      golden name
    );
  checkAssertion =
    name: flavour: modules: needle:
    let
      r = builtins.tryEval (failedAssertions (eval flavour modules).config);
      matching = lib.filter (lib.hasInfix needle) r.value;
    in
    check "assertion (${flavour}): ${name}" (r.success && matching != [ ]) (
      if !r.success then
        "the evaluation threw instead"
      else
        "no failing assertion contains ${builtins.toJSON needle}; failing: ${builtins.toJSON r.value}"
    );
  checkWarning =
    name: flavour: modules: needle: expected:
    let
      ws = (eval flavour modules).config.warnings;
      found = lib.any (lib.hasInfix needle) ws;
    in
    check "warning (${flavour}): ${name}" (found == expected) "warnings: ${builtins.toJSON ws}";
  # The module system must refuse the value (type check): the evaluation throws.
  checkRefused =
    name: flavour: modules:
    let
      r = builtins.tryEval (builtins.deepSeq (removeAttrs (eval flavour modules).config.tabula [ "package" ]) true);
    in
    check "refused (${flavour}): ${name}" (!r.success) "the value was accepted";

  # stage-1.nix pastes postResumeCommands into stage-1-init.sh and then goes
  # on substituting @name@ placeholders in the result: one in tabula's text
  # would be replaced by another hook's script (or fail the build).
  placeholderLines = text: lib.filter (l: builtins.match ".*@[A-Za-z_][A-Za-z0-9_]*@.*" l != null) (lib.splitString "\n" text);

  scriptedChecks =
    name: config:
    let
      i = config.boot.initrd;
    in
    [
      (checkEq "${name}: no @name@ placeholder in postResumeCommands (stage-1-init.sh substitutes them)" (placeholderLines i.postResumeCommands) [ ])
      (checkInfix "${name}: extra-utils copies the static binary" "copy_bin_and_libs ${rollbackBin}" i.extraUtilsCommands)
      (checkInfix "${name}: extra-utils tests the copied binary" "$out/bin/tabula-rollback" i.extraUtilsCommandsTest)
      (checkEq "${name}: config.json in the initrd" i.extraFiles."/etc/tabula/config.json".source.value config.tabula.settings)
      (checkInfix "${name}: postResumeCommands runs the rollback" "tabula-rollback --config /etc/tabula/config.json" i.postResumeCommands)
      (checkEq "${name}: no initrd service in the scripted flavour" (i.systemd.services ? tabula-rollback) false)
      (checkEq "${name}: nothing in postDeviceCommands (before resume)" i.postDeviceCommands "")
    ];

  systemdChecks =
    name: config: dep:
    let
      i = config.boot.initrd;
      s = i.systemd.services.tabula-rollback;
    in
    [
      (checkEq "${name}: DefaultDependencies=no" s.unitConfig.DefaultDependencies "no")
      (checkEq "${name}: Type=oneshot" s.serviceConfig.Type "oneshot")
      (checkEq "${name}: ExecStart runs the store path with the config" s.serviceConfig.ExecStart "${rollbackBin} --config /etc/tabula/config.json")
      (checkHas "${name}: After= the target's dependency" s.after dep)
      (checkHas "${name}: Wants= the target's dependency" s.wants dep)
      (checkEq "${name}: never Requires= a target's dependency (a missing disk fails only its target)" (builtins.elem dep s.requires) false)
      (checkHas "${name}: After=local-fs-pre.target (resume)" s.after "local-fs-pre.target")
      (checkHas "${name}: After=systemd-hibernate-resume.service" s.after "systemd-hibernate-resume.service")
      (checkHas "${name}: Wants=local-fs-pre.target" s.wants "local-fs-pre.target")
      (checkHas "${name}: Before=sysroot.mount" s.before "sysroot.mount")
      (checkEq "${name}: not ordered before its own dependency" (builtins.elem dep s.before) false)
      (checkEq "${name}: wanted by initrd.target" s.wantedBy [ "initrd.target" ])
      (checkEq "${name}: not required by anything (onFailure = continue)" s.requiredBy [ ])
      (checkHas "${name}: the binary is a store path of the initrd" i.systemd.storePaths rollbackBin)
      (checkEq "${name}: config.json in the initrd" i.systemd.contents."/etc/tabula/config.json".source.value config.tabula.settings)
    ]
    # where nixpkgs still declares them
    ++ lib.optional (i ? postResumeCommands) (
      checkEq "${name}: scripted-only hooks stay empty (systemd initrd asserts it)" [
        i.postResumeCommands
        i.postDeviceCommands
        i.extraUtilsCommands
        i.extraUtilsCommandsTest
      ] [ "" "" "" "" ]
    );

  stage2Checks = name: config: [
    (checkEq "${name}: generator in stage 2" config.systemd.generators.tabula generatorBin)
    (checkEq "${name}: /etc/tabula/config.json" config.environment.etc."tabula/config.json".source.value config.tabula.settings)
    (checkEq "${name}: the tabula command is installed" (map (p: p.outPath) config.environment.systemPackages) [ package.outPath ])
  ] ++ buildCheckChecks name config;

  # tabula-prune.service (prune.nix): the pruning half, in the booted
  # system, whatever the initrd flavour; started after multi-user.target,
  # which does not wait for it.
  pruneChecks =
    name: config:
    let
      s = config.systemd.services.tabula-prune;
    in
    [
      (checkEq "${name}: tabula-prune is a oneshot" s.serviceConfig.Type "oneshot")
      (checkEq "${name}: tabula-prune runs --prune-only on the config" s.serviceConfig.ExecStart "${rollbackBin} --prune-only --config /etc/tabula/config.json")
      (checkEq "${name}: tabula-prune in the idle I/O class" s.serviceConfig.IOSchedulingClass "idle")
      (checkEq "${name}: tabula-prune at the lowest CPU priority" s.serviceConfig.Nice 19)
      (checkHas "${name}: tabula-prune after local-fs.target" s.after "local-fs.target")
      (checkEq "${name}: tabula-prune wanted by multi-user.target" s.wantedBy [ "multi-user.target" ])
      (checkHas "${name}: tabula-prune after multi-user.target, so the boot does not wait for it" s.after "multi-user.target")
      (checkEq "${name}: nothing requires tabula-prune or is ordered after it" [ s.requiredBy s.before ] [ [ ] [ ] ])
      (checkEq "${name}: no other stage-2 unit names tabula-prune" (lib.filter (
        u: lib.any (builtins.elem "tabula-prune.service") [ u.after u.requires u.wants ]
      ) (lib.attrValues (removeAttrs config.systemd.services [ "tabula-prune" ]))) [ ])
    ];

  # The rendered file is checked by both binaries at build time (check.nix).
  buildCheckChecks =
    name: config:
    let
      checks = config.system.checks;
      script = (lib.head checks).script or "";
    in
    [
      (checkEq "${name}: system.checks holds the config check" (map (d: d.name) checks) [ "tabula-check-config" ])
      (checkInfix "${name}: the config check runs both binaries" "for program in tabula-rollback tabula-generator; do" script)
      (checkInfix "${name}: the config check runs --check-config on the rendered file" "${package.outPath}/bin/$program --check-config ${config.tabula.configFile.outPath}" script)
      (checkInfix "${name}: the config check fails when a binary refuses" "exit \"$status\"" script)
    ];

  # --- cases -------------------------------------------------------------------

  btrfsScripted = (eval "scripted" [ btrfsLayout ]).config;
  btrfsSystemd = (eval "systemd" [ btrfsLayout ]).config;
  btrfsSystemdOnly = (eval "systemd-only" [ btrfsLayout ]).config;
  zfsScripted = (eval "scripted" [ zfsLayout nixpkgsZfsImport ]).config;
  zfsSystemd = (eval "systemd" [ zfsLayout ]).config;
  zfsSystemdOnly = (eval "systemd-only" [ zfsLayout ]).config;

  zfsKeepPrevious =
    (eval "systemd" [
      zfsLayout
      {
        tabula.rollback.targets = lib.mkForce [
          {
            type = "zfs";
            dataset = "rpool/local/root";
            snapshot = "blank";
            oldRoots = "rpool/local/old_roots";
            keep = {
              days = 14;
              min = 2;
              max = 20;
            };
          }
        ];
      }
    ]).config;

  blockSystemd = (eval "systemd" [ btrfsLayout { tabula.rollback.onFailure = "block"; } ]).config;
  blockScripted = (eval "scripted" [ btrfsLayout { tabula.rollback.onFailure = "block"; } ]).config;

  # persisted files and homes, machine-id from the initrd (systemd initrd)
  persistFilesHomes = (eval "systemd" persistFilesHomesModules).config;
  persistFilesHomesModules = [
      btrfsLayout
      {
        users.users.alice = {
          isNormalUser = true;
          uid = 1000;
        };
        users.users.bob = {
          isNormalUser = true;
          uid = 1001;
          home = "/srv/bob";
        };
        tabula.persist."/persist" = {
          files = [
            {
              path = "/etc/machine-id";
              inInitrd = true;
            }
            {
              path = "/etc/ssh/ssh_host_rsa_key";
              mode = "0600";
              inInitrd = true;
            }
          ];
          users.alice = {
            directories = [
              "Documents"
              {
                path = ".ssh";
                mode = "0700";
              }
              {
                path = ".local/share/keyrings";
                mode = "0700";
              }
            ];
            files = [ ".bash_history" ];
          };
          users.bob.directories = [
            {
              path = "projects";
              user = "bob";
              group = 100;
            }
          ];
        };
      }
  ];

  # seed 004: the SSD overlay store, no rollback at all
  overlayLayout =
    (eval "scripted" [
      {
        fileSystems."/" = {
          device = "/dev/disk/by-label/NIXOS_SD";
          fsType = "ext4";
        };
        fileSystems."/mnt/nix-ssd" = {
          device = "/dev/disk/by-label/NIX_SSD";
          fsType = "btrfs";
          options = [
            "compress=zstd"
            "noatime"
            "nofail"
            "x-systemd.device-timeout=10s"
          ];
        };
        tabula.enable = true;
        tabula.overlays."/nix/store" = {
          upper = "/mnt/nix-ssd/upper";
          work = "/mnt/nix-ssd/work";
          whenMounted = "/mnt/nix-ssd";
          before = [
            "nix-daemon.service"
            "nix-daemon.socket"
          ];
        };
      }
    ]).config;

  # impermanence's own README example, through the compatibility module
  compat = evalCompat "scripted" [
    {
      fileSystems."/" = {
        device = "none";
        fsType = "tmpfs";
      };
      fileSystems."/persistent" = {
        device = "/dev/disk/by-label/persist";
        fsType = "ext4";
        neededForBoot = true;
      };
      fileSystems."/state" = {
        device = "/dev/disk/by-label/state";
        fsType = "ext4";
        neededForBoot = true;
      };
      users.users.talyz = {
        isNormalUser = true;
        uid = 1000;
      };
      environment.persistence."/persistent" = {
        hideMounts = true;
        directories = [
          "/var/log"
          "/var/lib/bluetooth"
          "/var/lib/nixos"
          "/var/lib/systemd/coredump"
          "/etc/NetworkManager/system-connections"
          {
            directory = "/var/lib/colord";
            user = "colord";
            group = "colord";
            mode = "u=rwx,g=rx,o=";
          }
        ];
        files = [
          "/etc/machine-id"
          # the README's parentDirectory.mode = "u=rwx,g=,o=" is refused
          # (compat-refusals below); the default parent mode is accepted
          {
            file = "/var/keys/secret_file";
            parentDirectory = {
              mode = "u=rwx,g=rx,o=rx";
            };
          }
        ];
        users.talyz = {
          directories = [
            "Downloads"
            "Music"
            {
              directory = ".gnupg";
              mode = "0700";
            }
            {
              directory = ".ssh";
              mode = "0700";
            }
          ];
          files = [ ".screenrc" ];
        };
      };
      # a second location with its own path, and a disabled one
      environment.persistence.state = {
        persistentStoragePath = "/state";
        allowTrash = true;
        directories = [ "/var/lib/libvirt" ];
      };
      environment.persistence."/old" = {
        enable = false;
        directories = [ "/var/lib/old" ];
      };
    }
  ];

  compatSystemd = evalCompat "systemd" [
    {
      fileSystems."/persistent" = {
        device = "/dev/disk/by-label/persist";
        fsType = "ext4";
        neededForBoot = true;
      };
      environment.persistence."/persistent".directories = [
        "/var/lib/nixos"
        "/var/lib/bluetooth"
      ];
      environment.persistence."/persistent".files = [
        "/etc/machine-id"
        "/etc/ssh/ssh_host_ed25519_key"
      ];
    }
  ];

  compatDisabled = evalCompat "systemd" [ ];

  # one storage on a filesystem needed for boot, one normal user
  compatBase = {
    fileSystems."/persist" = {
      device = "/dev/disk/by-label/persist";
      fsType = "ext4";
      neededForBoot = true;
    };
    users.users.alice = {
      isNormalUser = true;
      uid = 1000;
    };
  };
  compatWith = flavour: extra: evalCompat flavour ([ compatBase ] ++ extra);
  persistAt = settings: path: lib.findFirst (s: s.storage == path) null settings.persist;
  # The compat module writes ownership = "create" on every entry (checked
  # once, below); the other compat checks compare the rest of each entry.
  # the compatibility module's defaults on every entry: "ownership" =
  # "create", and on files "method" = "auto" (impermanence's own)
  stripCreate =
    e:
    if builtins.isAttrs e && (e.ownership or null) == "create" then
      let
        r = removeAttrs e ([ "ownership" ] ++ lib.optional ((e.method or null) == "auto") "method");
      in
      if builtins.attrNames r == [ "path" ] then r.path else r
    else
      e;
  stripUser = u: u // {
    directories = map stripCreate u.directories;
    files = map stripCreate u.files;
  };
  allEntries =
    settings:
    lib.concatMap (
      s: s.directories ++ s.files ++ lib.concatMap (u: u.directories ++ u.files) (lib.attrValues s.users)
    ) settings.persist;
  checkCompatAssertion =
    name: modules: needle:
    let
      r = builtins.tryEval (failedAssertions (compatWith "systemd" modules));
      matching = lib.filter (lib.hasInfix needle) r.value;
    in
    check "compat assertion: ${name}" (r.success && matching != [ ]) (
      if !r.success then
        "the evaluation threw instead"
      else
        "no failing assertion contains ${builtins.toJSON needle}; failing: ${builtins.toJSON r.value}"
    );

  # Home Manager: home.persistence of each user, through home-manager.sharedModules
  compatHomeManager = compatWith "systemd" [
    ./home-manager-stub.nix
    {
      users.users.alice.home = "/home/alice";
      environment.persistence."/persist".directories = [ "/var/lib/nixos" ];
      home-manager.users.alice.home.persistence."/persist" = {
        hideMounts = false;
        directories = [
          "Documents"
          ".local/share/direnv/"
          {
            directory = ".ssh";
            mode = "u=rwx,g=,o=";
          }
        ];
        files = [ ".zsh_history" ];
      };
      home-manager.users.alice.home.persistence."/persist/cache".directories = [ ".cache/nix" ];
      home-manager.users.alice.home.persistence."/old" = {
        enable = false;
        directories = [ "old" ];
      };
    }
  ];
  # sops-nix and agenix keys: the storage and a user's host key persisted in stage 2
  secretsWith =
    flavour: extra:
    failedAssertions (
      compatWith flavour (
        [
          ./secrets-stub.nix
          {
            environment.persistence."/persist" = {
              directories = [ "/var/lib/nixos" ];
              files = [ "/etc/ssh/ssh_host_ed25519_key" ];
            };
          }
        ]
        ++ extra
      )
    );
  checkSecrets =
    name: flavour: extra: needles:
    let
      failed = secretsWith flavour extra;
      text = lib.concatStringsSep "\n" failed;
    in
    check "secrets keys (${flavour}): ${name}" (
      if needles == [ ] then failed == [ ] else lib.all (n: lib.hasInfix n text) needles
    ) "failing assertions: ${builtins.toJSON failed}";

  hmAssertions = user: config: map (a: a.message) (lib.filter (a: !a.assertion) config.home-manager.users.${user}.assertions);

  # paths and modes as impermanence reads them
  compatPaths = compatWith "systemd" [
    {
      environment.persistence."/persist" = {
        directories = [
          "/var/lib/NetworkManager/"
          "//var//lib/bluetooth"
          {
            directory = "/var/lib/private";
            mode = "go-rwx";
          }
          {
            directory = "/srv/public";
            mode = "a+r";
          }
          {
            directory = "/srv/shared";
            mode = "u=rwx,g=rx,o=";
          }
        ];
        files = [ "/etc/ssh/ssh_host_ed25519_key" ];
        users.alice.directories = [ ".config/sops/age/" ];
        users.alice.files = [ "/.bash_history" ];
      };
    }
  ];
  compatPathsStorage = persistAt compatPaths.tabula.settings "/persist";
  # "." persists the whole home
  compatHome = compatWith "systemd" [
    { environment.persistence."/persist".users.alice.directories = [ "." ]; }
  ];

  # --- sources of their own: ZFS datasets, Btrfs subvolumes ------------------------

  # The issue's example, rendered as written (one storage holding both kinds;
  # the assertions, which know the storage's filesystem, are checked apart).
  issueExample = {
    tabula.persist."/persist".directories = [
      {
        path = "/var/lib/postgresql";
        user = "postgres";
        group = "postgres";
        mode = "0750";
        zfs = {
          dataset = "rpool/safe/persist/postgresql";
          properties = {
            recordsize = "8K";
            compression = "lz4";
          };
        };
      }
      {
        path = "/var/lib/containers";
        btrfs = {
          subvolume = true;
          nodatacow = true;
          compression = null;
        };
      }
    ];
  };
  issueExampleZfs = (eval "systemd" [ zfsLayout issueExample ]).config;

  # The per-service ZFS design: every service its own dataset, with its own
  # recordsize and compression (Plex 1M, SQLite apps 16K, PostgreSQL data 8K,
  # its WAL 128K uncompressed), children of /persist's dataset by default or
  # named in full, and a user property for the backup tool.
  zfsDatasetsModules = zfsWith [
    {
      tabula.persist."/persist".directories = [
        {
          path = "/var/lib/plex";
          zfs.properties = {
            recordsize = "1M";
            compression = "lz4";
          };
        }
        {
          path = "/var/lib/sonarr";
          zfs.properties = {
            recordsize = "16K";
            compression = "lz4";
          };
        }
        {
          path = "/var/lib/postgresql";
          user = "postgres";
          group = "postgres";
          mode = "0750";
          zfs = {
            dataset = "rpool/safe/persist/postgresql";
            properties = {
              recordsize = "8K";
              compression = "lz4";
              "com.example:backup" = "true";
            };
          };
        }
        {
          path = "/var/lib/postgresql-wal";
          user = "postgres";
          group = "postgres";
          mode = "0700";
          zfs = {
            dataset = "rpool/safe/persist/postgresql-wal";
            properties = {
              recordsize = "128K";
              compression = "off";
            };
          };
        }
      ];
      tabula.persist."/persist".users.alice.directories = [
        {
          path = "VMs";
          zfs.properties.recordsize = "64K";
        }
      ];
    }
  ];
  zfsDatasets = (eval "systemd" zfsDatasetsModules).config;

  # The Btrfs design: containers without copy-on-write, logs compressed harder.
  btrfsSubvolumesModules = btrfsWith [
    {
      tabula.persist."/persist".directories = [
        {
          path = "/var/lib/containers";
          btrfs.nodatacow = true;
        }
        {
          path = "/var/lib/caddy";
          btrfs.compression = "zstd:3";
        }
      ];
    }
  ];
  btrfsSubvolumes = (eval "systemd" btrfsSubvolumesModules).config;

  # an entry of the per-service layout with one mistake in its `zfs`
  zfsEntry = extra: zfsWith [ { tabula.persist."/persist".directories = [ ({ path = "/var/lib/app"; } // extra) ]; } ];
  btrfsEntry = extra: btrfsWith [ { tabula.persist."/persist".directories = [ ({ path = "/var/lib/app"; } // extra) ]; } ];
  dropIn = config: config.systemd.services.tabula-sources or null;

  # --- assertion cases: a layout plus one mistake ----------------------------------

  btrfsWith = extra: [ btrfsLayout ] ++ extra;
  zfsWith = extra: [ zfsLayout ] ++ extra;

  indexOf =
    needle: haystack:
    let
      parts = lib.splitString needle haystack;
    in
    if lib.length parts < 2 then -1 else lib.stringLength (lib.head parts);
in
lib.flatten [
  # Btrfs, scripted initrd (seed 001)
  (checkNoAssertions "btrfs-scripted" btrfsScripted)
  (checkGolden "btrfs-scripted" btrfsScripted)
  (scriptedChecks "btrfs-scripted" btrfsScripted)
  (stage2Checks "btrfs-scripted" btrfsScripted)
  (pruneChecks "btrfs-scripted" btrfsScripted)
  (checkInfix "btrfs-scripted: onFailure = continue does not call fail" "booting the root as it is" btrfsScripted.boot.initrd.postResumeCommands)

  # Btrfs, systemd initrd
  (checkNoAssertions "btrfs-systemd" btrfsSystemd)
  (checkEq "btrfs-systemd: same config as scripted" btrfsSystemd.tabula.settings btrfsScripted.tabula.settings)
  (systemdChecks "btrfs-systemd" btrfsSystemd "dev-disk-by\\x2dlabel-nixos.device")
  (stage2Checks "btrfs-systemd" btrfsSystemd)
  (pruneChecks "btrfs-systemd" btrfsSystemd)
  (checkEq "btrfs-systemd: the same tabula-prune as with the scripted initrd" btrfsSystemd.systemd.services.tabula-prune btrfsScripted.systemd.services.tabula-prune)
  (checkEq "btrfs-systemd: tabula-prune not ordered after a ZFS import" (builtins.elem "zfs-import.target" btrfsSystemd.systemd.services.tabula-prune.after) false)
  (checkEq "btrfs-systemd: no generator in the initrd without inInitrd entries" (
    btrfsSystemd.boot.initrd.systemd.contents ? "/etc/systemd/system-generators/tabula"
  ) false)

  # ZFS @blank, scripted initrd (seeds 000, 003)
  (checkNoAssertions "zfs-scripted" zfsScripted)
  (checkGolden "zfs-scripted" zfsScripted)
  (scriptedChecks "zfs-scripted" zfsScripted)
  (check "zfs-scripted: rollback after nixpkgs' pool import in postResumeCommands" (
    let
      cmds = zfsScripted.boot.initrd.postResumeCommands;
      importAt = indexOf "importing root ZFS pool" cmds;
      rollbackAt = indexOf "tabula-rollback --config" cmds;
    in
    importAt >= 0 && rollbackAt > importAt
  ) zfsScripted.boot.initrd.postResumeCommands)

  # ZFS @blank, systemd initrd
  (checkNoAssertions "zfs-systemd" zfsSystemd)
  (systemdChecks "zfs-systemd" zfsSystemd "zfs-import-rpool.service")
  (checkEq "zfs-systemd: no device unit for a ZFS target" (lib.filter (lib.hasSuffix ".device") zfsSystemd.boot.initrd.systemd.services.tabula-rollback.after) [ ])

  # A nixpkgs without the scripted initrd's options (planned for 26.11): the
  # module still evaluates, and the systemd wiring is the same.
  (checkNoAssertions "btrfs-systemd-only" btrfsSystemdOnly)
  (systemdChecks "btrfs-systemd-only" btrfsSystemdOnly "dev-disk-by\\x2dlabel-nixos.device")
  (stage2Checks "btrfs-systemd-only" btrfsSystemdOnly)
  (pruneChecks "btrfs-systemd-only" btrfsSystemdOnly)
  (checkEq "btrfs-systemd-only: the scripted options really are absent" (btrfsSystemdOnly.boot.initrd ? postResumeCommands) false)
  (checkEq "btrfs-systemd-only: same service as with the scripted options declared" btrfsSystemdOnly.boot.initrd.systemd.services btrfsSystemd.boot.initrd.systemd.services)
  (checkNoAssertions "zfs-systemd-only" zfsSystemdOnly)
  (systemdChecks "zfs-systemd-only" zfsSystemdOnly "zfs-import-rpool.service")
  (checkNoAssertions "persist-files-and-homes (systemd-only)" (eval "systemd-only" persistFilesHomesModules).config)
  (checkAssertion "the scripted initrd asked for where nixpkgs no longer has it" "scripted-gone" [ btrfsLayout ]
    "this nixpkgs has no scripted initrd")
  (checkEq "the real-NixOS evaluation cases (nixos-eval-*) each set boot.initrd.systemd.enable" (
    lib.attrNames (
      lib.filterAttrs (_: c: !lib.any (m: m ? boot.initrd.systemd.enable) c.imports) (
        import ./nixos-eval-cases.nix
      )
    )
  ) [ ])

  # ZFS keep-previous
  (checkNoAssertions "zfs-keep-previous" zfsKeepPrevious)
  (checkGolden "zfs-keep-previous" zfsKeepPrevious)
  (pruneChecks "zfs-keep-previous" zfsKeepPrevious)
  (checkHas "zfs-keep-previous: tabula-prune after the pool imports" zfsKeepPrevious.systemd.services.tabula-prune.after "zfs-import.target")
  (checkEq "zfs-scripted: no tabula-prune when oldRoots is null (nothing to prune)" (zfsScripted.systemd.services ? tabula-prune) false)

  # failure policy
  (checkEq "failure-policy: block makes initrd.target require the rollback" blockSystemd.boot.initrd.systemd.services.tabula-rollback.requiredBy [ "initrd.target" ])
  (checkEq "failure-policy: block drops WantedBy" blockSystemd.boot.initrd.systemd.services.tabula-rollback.wantedBy [ ])
  (checkInfix "failure-policy: block calls stage 1's fail in the scripted initrd" "fail\n" blockScripted.boot.initrd.postResumeCommands)
  (checkInfix "failure-policy: block in the scripted initrd repeats the rollback until it succeeds (fail's \"continue\" key does not boot the old root)" "until tabula-rollback --config /etc/tabula/config.json; do" blockScripted.boot.initrd.postResumeCommands)
  (checkEq "failure-policy: continue never calls fail" (lib.hasInfix "fail\n" btrfsScripted.boot.initrd.postResumeCommands) false)
  (checkEq "failure-policy: no @name@ placeholder in postResumeCommands with block" (placeholderLines blockScripted.boot.initrd.postResumeCommands) [ ])
  (checkEq "failure-policy: the rendered config does not depend on it" blockSystemd.tabula.settings btrfsScripted.tabula.settings)

  # persisted files and homes, machine-id in the initrd
  (checkNoAssertions "persist-files-and-homes" persistFilesHomes)
  (checkGolden "persist-files-and-homes" persistFilesHomes)
  (checkEq "persist-files-and-homes: generator in the initrd" persistFilesHomes.boot.initrd.systemd.contents."/etc/systemd/system-generators/tabula".source generatorBin)
  (checkHas "persist-files-and-homes: generator is a store path of the initrd" persistFilesHomes.boot.initrd.systemd.storePaths generatorBin)
  (stage2Checks "persist-files-and-homes" persistFilesHomes)

  # overlay store (seed 004), no rollback
  (checkNoAssertions "overlay" overlayLayout)
  (checkGolden "overlay" overlayLayout)
  (stage2Checks "overlay" overlayLayout)
  (checkEq "overlay: no initrd wiring without rollback targets" [
    overlayLayout.boot.initrd.extraUtilsCommands
    overlayLayout.boot.initrd.postResumeCommands
    (overlayLayout.boot.initrd.extraFiles ? "/etc/tabula/config.json")
  ] [ "" "" false ])

  # impermanence compatibility
  (checkNoAssertions "compat-impermanence" compat)
  (checkGolden "compat-impermanence" compat)
  (checkEq "compat: every entry leaves the owner and mode of existing data alone (ownership = create), as impermanence does" (lib.unique (
    map (e: e.ownership or null) (lib.concatMap (c: allEntries c.tabula.settings) [
      compat
      compatSystemd
      compatPaths
      compatHome
      compatHomeManager
    ])
  )) [ "create" ])
  (stage2Checks "compat-impermanence" compat)
  (checkEq "compat-impermanence: tabula enabled by environment.persistence" compat.tabula.enable true)
  (checkEq "compat-impermanence: nothing enabled without environment.persistence" compatDisabled.tabula.enable false)
  (checkEq "disabled: no build-time config check" compatDisabled.system.checks [ ])
  (checkEq "compat-impermanence: /etc/machine-id is mounted from the systemd initrd, before PID 1 reads it" (map stripCreate (lib.head compatSystemd.tabula.settings.persist).files) [
    {
      path = "/etc/machine-id";
      inInitrd = true;
    }
    "/etc/ssh/ssh_host_ed25519_key"
  ])
  (checkEq "compat-impermanence: with the systemd initrd no machine-id warning" (lib.filter (lib.hasInfix "/etc/machine-id") compatSystemd.warnings) [ ])
  # the scripted initrd: what NixOS needs before stage 2, and the machine
  # id, bind-mounted from stage 1 as impermanence does, outer first
  (checkEq "compat-impermanence: with the scripted initrd, pathsNeededForBoot and /etc/machine-id are mounted from stage 1" (map (m: "${m.kind} ${m.storage}${m.path}") compat.tabula.scriptedStage1Mounts) [
    "file /persistent/etc/machine-id"
    "directory /persistent/var/lib/nixos"
    "directory /persistent/var/log"
  ])
  (check "compat-impermanence: stage 1 bind-mounts them under /mnt-root, after the storages, creating a missing copy (the machine id \"uninitialized\")" (
    let
      c = compat.boot.initrd.postMountCommands;
    in
    lib.all (n: lib.hasInfix n c) [
      "mount -o bind /mnt-root/persistent/var/log /mnt-root/var/log"
      "mount -o bind /mnt-root/persistent/var/lib/nixos /mnt-root/var/lib/nixos"
      "mount -o bind /mnt-root/persistent/etc/machine-id /mnt-root/etc/machine-id"
      "echo uninitialized > /mnt-root/persistent/etc/machine-id"
      "mkdir -m 0755 /mnt-root/persistent/var/log && chown 0:0"
    ]
    && !(lib.hasInfix "bluetooth" c)
  ) compat.boot.initrd.postMountCommands)
  (checkEq "compat-impermanence: with the scripted initrd no warning about /etc/machine-id or activation (both are mounted before)" (lib.filter (w: lib.hasInfix "/etc/machine-id" w || lib.hasInfix "used by NixOS activation" w) compat.warnings) [ ])
  (checkEq "compat-impermanence: with the systemd initrd nothing is mounted by the scripted hook (inInitrd instead)" [
    compatSystemd.tabula.scriptedStage1Mounts
    compatSystemd.boot.initrd.postMountCommands
  ] [ [ ] "" ])
  (checkEq "compat-impermanence: boot-needed directories come from the systemd initrd, as impermanence mounts them" (map stripCreate (lib.head compatSystemd.tabula.settings.persist).directories) [
    {
      path = "/var/lib/nixos";
      inInitrd = true;
    }
    "/var/lib/bluetooth"
  ])

  # sops-nix / agenix: keys they read must be there at activation
  (checkSecrets "an SSH host key persisted in stage 2 is refused, naming the line to add" "systemd" [
    { sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ]; }
  ] [
    "sops.age.sshKeyPaths reads /etc/ssh/ssh_host_ed25519_key"
    "only in stage 2, after activation"
    "tabula.persist.\"/persist\".files = [ { path = \"/etc/ssh/ssh_host_ed25519_key\"; inInitrd = true; } ];"
    "sops.age.sshKeyPaths = [ \"/persist/etc/ssh/ssh_host_ed25519_key\" ];"
  ])
  (checkSecrets "a key inside a directory persisted in stage 2: that directory from the initrd" "systemd" [
    {
      environment.persistence."/persist".files = lib.mkForce [ ];
      environment.persistence."/persist".directories = [ "/etc/ssh" ];
      sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
    }
  ] [ "tabula.persist.\"/persist\".directories = [ { path = \"/etc/ssh\"; inInitrd = true; } ];" ])
  (checkSecrets "the same key read from the storage (a filesystem needed for boot) is accepted" "systemd" [
    { sops.age.sshKeyPaths = [ "/persist/etc/ssh/ssh_host_ed25519_key" ]; }
  ] [ ])
  (checkSecrets "an agenix identity persisted inInitrd is accepted" "systemd" [
    {
      age.identityPaths = [ "/etc/ssh/ssh_host_rsa_key" ];
      tabula.persist."/persist".files = [
        {
          path = "/etc/ssh/ssh_host_rsa_key";
          inInitrd = true;
        }
      ];
    }
  ] [ ])
  (checkSecrets "an agenix identity not persisted at all is refused" "systemd" [
    { age.identityPaths = [ "/etc/ssh/ssh_host_rsa_key" ]; }
  ] [
    "age.identityPaths reads /etc/ssh/ssh_host_rsa_key"
    "it is not persisted at all"
  ])
  (checkSecrets "sops.age.keyFile under a directory persisted in stage 2, scripted initrd: read it from the storage" "scripted" [
    {
      environment.persistence."/persist".directories = [ "/var/lib/sops-nix" ];
      sops.age.keyFile = "/var/lib/sops-nix/key.txt";
    }
  ] [
    "sops.age.keyFile reads /var/lib/sops-nix/key.txt"
    "(/var/lib/sops-nix in /persist) only in stage 2"
    "The scripted initrd cannot mount persisted paths before activation"
    "sops.age.keyFile = \"/persist/var/lib/sops-nix/key.txt\";"
  ])
  (checkSecrets "sops.gnupg.sshKeyPaths on another filesystem needed for boot is accepted" "systemd" [
    {
      fileSystems."/nix" = {
        device = "/dev/disk/by-label/nix";
        fsType = "ext4";
      };
      sops.gnupg.sshKeyPaths = [ "/nix/persist/etc/ssh/ssh_host_rsa_key" ];
    }
  ] [ ])
  (checkSecrets "sops.gnupg.sshKeyPaths on the erased root is refused" "systemd" [
    { sops.gnupg.sshKeyPaths = [ "/root/.ssh/id_rsa" ]; }
  ] [ "sops.gnupg.sshKeyPaths reads /root/.ssh/id_rsa" ])

  # Home Manager's home.persistence, mapped to the user's entries
  (checkEq "compat: Home Manager's home.persistence becomes the user's tabula.persist entries, per storage" (map (s: {
    inherit (s) storage;
    users = lib.mapAttrs (_: stripUser) s.users;
  }) compatHomeManager.tabula.settings.persist) [
    {
      storage = "/persist";
      users.alice = {
        home = "/home/alice";
        directories = [
          "Documents"
          ".local/share/direnv"
          {
            path = ".ssh";
            mode = "0700";
          }
        ];
        files = [ ".zsh_history" ];
      };
    }
    {
      storage = "/persist/cache";
      users.alice = {
        home = "/home/alice";
        directories = [ ".cache/nix" ];
        files = [ ];
      };
    }
  ])
  (checkEq "compat: the Home Manager module is added to home-manager.sharedModules, and knows it" (hmAssertions "alice" compatHomeManager) [ ])
  (check "compat: home.persistence with the home in persistentStoragePath is refused, as impermanence does" (
    lib.any (lib.hasInfix "contains the home directory") (
      hmAssertions "alice" (compatWith "systemd" [
        ./home-manager-stub.nix
        { home-manager.users.alice.home.persistence."/persist/home/alice".directories = [ "Documents" ]; }
      ])
    )
  ) "not refused")
  (checkEq "compat: without Home Manager nothing is added for it" (compatPaths ? home-manager) false)
  (checkCompatAssertion "Home Manager entries are refused for the same reasons (a mode mkdir reads differently)" [
    ./home-manager-stub.nix
    {
      home-manager.users.alice.home.persistence."/persist".directories = [
        {
          directory = ".gnupg";
          mode = "g=u";
        }
      ];
    }
  ] "home-manager.users.alice.home.persistence.\"/persist\": .gnupg: mode \"g=u\" is not one tabula can reproduce")

  # impermanence's paths and modes (concatPaths, mkdir --mode)
  (checkNoAssertions "compat-paths" compatPaths)
  (checkEq "compat: trailing and repeated slashes are dropped, symbolic modes become mkdir's octal" (map stripCreate compatPathsStorage.directories) [
    "/var/lib/NetworkManager"
    "/var/lib/bluetooth"
    {
      path = "/var/lib/private";
      mode = "0700";
    }
    {
      path = "/srv/public";
      mode = "0777";
    }
    {
      path = "/srv/shared";
      mode = "0750";
    }
  ])
  (checkEq "compat: a user's paths are relative to the home, slashes dropped" (stripUser compatPathsStorage.users.alice) {
    home = "/home/alice";
    directories = [ ".config/sops/age" ];
    files = [ ".bash_history" ];
  })
  (checkNoAssertions "compat-home" compatHome)
  (checkEq "compat: an outer directory listed after an inner one is created as its parent, as impermanence creates it" (stripUser (persistAt (compatWith "systemd" [
    {
      users.users.alice.group = "users";
      environment.persistence."/persist".users.alice.directories = [
        ".config/fcitx5"
        {
          directory = ".config";
          group = "wheel";
          mode = "0700";
        }
        ".local/share"
        ".local"
      ];
    }
  ]).tabula.settings "/persist").users.alice) {
        home = "/home/alice";
        directories = [
          ".config/fcitx5"
          {
            path = ".config";
            user = "alice";
            group = "users";
            mode = "0755";
          }
          ".local/share"
          {
            path = ".local";
            user = "alice";
            group = "users";
            mode = "0755";
          }
        ];
        files = [ ];
      })
  (checkEq "compat: \".\" in users.<name>.directories persists the whole home, the user's, 0700 as impermanence creates it" (map stripCreate (persistAt compatHome.tabula.settings "/persist").directories) [
    {
      path = "/home/alice";
      user = "alice";
      group = "users";
      mode = "0700";
    }
  ])
  (checkEq "compat: persistentStoragePath accepts a path literal" (map (s: s.storage) (compatWith "systemd" [
    {
      environment.persistence.main = {
        persistentStoragePath = /persist;
        directories = [ "/var/log" ];
      };
    }
  ]).tabula.settings.persist) [ "/persist" ])

  # what tabula cannot do as impermanence does: refused, with the reason
  (checkEq "compat: a file's parentDirectory goes to the entry, the mode as mkdir makes it (impermanence's README example)" (map stripCreate (persistAt (compatWith "systemd" [
    {
      environment.persistence."/persist".files = [
        {
          file = "/var/keys/secret_file";
          parentDirectory.mode = "u=rwx,g=,o=";
        }
        {
          file = "/var/lib/app/state";
          parentDirectory.user = "alice";
        }
      ];
    }
  ]).tabula.settings "/persist").files) [
    {
      path = "/var/keys/secret_file";
      parentDirectory.mode = "0700";
    }
    {
      path = "/var/lib/app/state";
      parentDirectory.user = "alice";
    }
  ])
  (checkNoAssertions "compat: parentDirectory equal to the default parent is accepted" (compatWith "systemd" [
    {
      environment.persistence."/persist".users.alice.files = [
        {
          file = ".config/app/token";
          parentDirectory.mode = "0755";
        }
      ];
    }
  ]))
  (checkEq "compat: a file's method is impermanence's, \"auto\" when unset (bind when the copy exists, else a symlink)" (persistAt (compatWith "systemd" [
    {
      environment.persistence."/persist".files = [
        {
          file = "/etc/app.conf";
          method = "symlink";
        }
        {
          file = "/etc/other.conf";
          method = "auto";
        }
        "/etc/unset.conf"
      ];
    }
  ]).tabula.settings "/persist").files (map (x: x // { ownership = "create"; }) [
    {
      path = "/etc/app.conf";
      method = "symlink";
    }
    {
      path = "/etc/other.conf";
      method = "auto";
    }
    {
      path = "/etc/unset.conf";
      method = "auto";
    }
  ]))
  (checkEq "compat: hideMount and allowTrash per entry, on directory mounts only, as impermanence" (
    let
      st = persistAt (compatWith "systemd" [
        {
          environment.persistence."/persist" = {
            hideMounts = true;
            allowTrash = true;
            directories = [
              "/var/lib/both"
              {
                directory = "/var/lib/shown";
                hideMount = false;
              }
              {
                directory = "/srv/notrash";
                allowTrash = false;
              }
              {
                directory = "/srv/plain";
                hideMount = false;
                allowTrash = false;
              }
            ];
            files = [ "/etc/app.conf" ];
          };
        }
      ]).tabula.settings "/persist";
    in
    {
      inherit (st) hideMounts mountOptions;
      directories = map stripCreate st.directories;
      files = map stripCreate st.files;
    }
  ) {
    hideMounts = false;
    mountOptions = [ ];
    directories = [
      {
        path = "/var/lib/both";
        mountOptions = [
          "x-gvfs-hide"
          "x-gvfs-trash"
        ];
      }
      {
        path = "/var/lib/shown";
        mountOptions = [ "x-gvfs-trash" ];
      }
      {
        path = "/srv/notrash";
        mountOptions = [ "x-gvfs-hide" ];
      }
      "/srv/plain"
    ];
    files = [ "/etc/app.conf" ];
  })
  (checkCompatAssertion "a symbolic mode mkdir reads differently from what is modelled (copying bits)" [
    {
      environment.persistence."/persist".directories = [
        {
          directory = "/var/lib/app";
          mode = "g=u";
        }
      ];
    }
  ] "is not one tabula can reproduce exactly")
  (checkCompatAssertion "a setuid mode" [
    {
      environment.persistence."/persist".directories = [
        {
          directory = "/var/lib/app";
          mode = "u+s";
        }
      ];
    }
  ] "is not one tabula can reproduce exactly")
  (checkCompatAssertion "users.<name>.home other than the user's home" [
    { environment.persistence."/persist".users.alice.home = "/srv/alice"; }
  ] "is not the user's home")
  (check "compat: users.<name>.home equal to the user's home is accepted with a deprecation warning" (
    let
      c = compatWith "systemd" [ { environment.persistence."/persist".users.alice.home = "/home/alice"; } ];
    in
    failedAssertions c == [ ] && lib.any (lib.hasInfix "users.alice.home is deprecated") c.warnings
  ) "no deprecation warning, or an assertion")
  (check "compat: enableWarnings = false silences the deprecation warning" (
    let
      c = compatWith "systemd" [
        {
          environment.persistence."/persist" = {
            enableWarnings = false;
            users.alice.home = "/home/alice";
          };
        }
      ];
    in
    !(lib.any (lib.hasInfix "is deprecated") c.warnings)
  ) "warned anyway")
  (check "compat: /var/lib/nixos not persisted while a user has no uid: warned" (
    lib.any (lib.hasInfix "/var/lib/nixos is neither persisted nor mounted") (compatWith "systemd" [
      {
        users.users.bob.isNormalUser = true;
        environment.persistence."/persist".directories = [ "/var/log" ];
      }
    ]).warnings
  ) "no warning")

  # sources of their own (the `zfs` and `btrfs` keys of a directory entry)
  (checkGolden "issue-example" issueExampleZfs)
  (checkAssertion "the issue's btrfs entry on a storage on ZFS is refused, naming the entry" "systemd" [ zfsLayout issueExample ]
    "tabula.persist.\"/persist\".directories: /var/lib/containers: `btrfs` makes the source a subvolume inside /persist, but /persist is on zfs, not Btrfs: remove it (or use `zfs` for a dataset).")
  (checkEq "the issue's zfs entry on a storage on ZFS draws no assertion" (lib.filter (lib.hasInfix "/var/lib/postgresql") (failedAssertions issueExampleZfs)) [ ])
  (checkNoAssertions "zfs-datasets" zfsDatasets)
  (checkGolden "zfs-datasets" zfsDatasets)
  (checkNoAssertions "btrfs-subvolumes" btrfsSubvolumes)
  (checkGolden "btrfs-subvolumes" btrfsSubvolumes)
  (checkEq "zfs-datasets: a drop-in for the generator's tabula-sources.service, not a unit of its own" (dropIn zfsDatasets).overrideStrategy "asDropin")
  (checkHas "zfs-datasets: the datasets are created after the pool imports" (dropIn zfsDatasets).after "zfs-import.target")
  (checkHas "zfs-datasets: the dataset step wants the pool imports" (dropIn zfsDatasets).wants "zfs-import.target")
  (checkEq "zfs-datasets: the ZFS module's zfs in the dataset step's PATH" (dropIn zfsDatasets).path [ zfsDatasets.boot.zfs.package ])
  (checkEq "zfs-datasets: the drop-in adds nothing else (no ExecStart, no WantedBy)" [ (dropIn zfsDatasets).serviceConfig (dropIn zfsDatasets).wantedBy ] [ { } [ ] ])
  (checkEq "btrfs-subvolumes: no ZFS drop-in without a zfs entry (the generator's unit needs nothing of NixOS for subvolumes)" (dropIn btrfsSubvolumes) null)
  (checkEq "zfs-scripted: no ZFS drop-in without a zfs entry" (dropIn zfsScripted) null)
  (checkEq "compat: impermanence entries render without zfs or btrfs keys" (lib.filter (e: builtins.isAttrs e && (e ? zfs || e ? btrfs)) (
    lib.concatMap (c: allEntries c.tabula.settings) [ compat compatSystemd compatPaths compatHome compatHomeManager ]
  )) [ ])
  (check "compat: zfs in an environment.persistence entry is refused (impermanence has no such option), not ignored" (
    !(builtins.tryEval (builtins.deepSeq (compatWith "systemd" [
      { environment.persistence."/persist".directories = [ { directory = "/var/lib/plex"; zfs = { }; } ]; }
    ]).tabula.settings true)).success
  ) "accepted")
  (checkAssertion "zfs and btrfs on one entry" "systemd" (zfsEntry {
    zfs = { };
    btrfs = { };
  }) "tabula.persist.\"/persist\".directories: /var/lib/app: both `zfs` and `btrfs` are set; a source is a dataset or a subvolume, not both: keep `zfs` (/persist is on zfs)")
  (checkAssertion "zfs on a file entry" "systemd" (zfsWith [
    { tabula.persist."/persist".files = [ { path = "/etc/app.conf"; zfs = { }; } ]; }
  ]) "tabula.persist.\"/persist\".files: /etc/app.conf: `zfs` is for directories: a dataset is mounted on a directory, not a file. Remove it")
  (checkAssertion "btrfs on a user's file entry" "systemd" (btrfsWith [
    { tabula.persist."/persist".users.alice.files = [ { path = ".zsh_history"; btrfs = { }; } ]; }
  ]) "tabula.persist.\"/persist\".users.alice.files: .zsh_history: `btrfs` is for directories")
  (checkAssertion "an unknown ZFS property, with the likely one" "systemd" (zfsEntry { zfs.properties.recordize = "1M"; })
    "/var/lib/app: zfs.properties.recordize: not a ZFS property tabula knows (did you mean recordsize?)")
  (checkAssertion "a recordsize ZFS could never take" "systemd" (zfsEntry { zfs.properties.recordsize = "3K"; })
    "/var/lib/app: zfs.properties.recordsize: \"3K\": expected a power of two from `min` to `max` bytes")
  (checkAssertion "a recordsize above 16M" "systemd" (zfsEntry { zfs.properties.recordsize = "32M"; })
    "zfs.properties.recordsize: \"32M\": expected")
  (checkAssertion "an unknown compression, with the values ZFS takes" "systemd" (zfsEntry { zfs.properties.compression = "lz5"; })
    "zfs.properties.compression: \"lz5\": expected one of on, off, lzjb, gzip")
  (checkAssertion "mountpoint is tabula's" "systemd" (zfsEntry { zfs.properties.mountpoint = "/var/lib/app"; })
    "zfs.properties.mountpoint: tabula mounts the dataset itself")
  (checkAssertion "a quota too large for ZFS" "systemd" (zfsEntry { zfs.properties.quota = "8E"; })
    "zfs.properties.quota: \"8E\": expected \"none\", or a decimal number")
  (checkAssertion "a user property in upper case" "systemd" (zfsEntry { zfs.properties."Com.Example:x" = "1"; })
    "user properties are written module:property in lower case")
  (checkAssertion "a whole pool as the dataset" "systemd" (zfsEntry { zfs.dataset = "rpool"; })
    "zfs.dataset = \"rpool\": expected a dataset inside a pool (pool/name)")
  (checkAssertion "a dataset in a pool not imported at boot" "systemd" (zfsEntry { zfs.dataset = "tank/services/app"; })
    "zfs.dataset = \"tank/services/app\" is in pool tank, which is not imported at boot: add \"tank\" to boot.zfs.extraPools")
  (checkNoAssertions "a dataset in a pool of boot.zfs.extraPools" (eval "systemd" (zfsEntry { zfs.dataset = "tank/services/app"; } ++ [ { boot.zfs.extraPools = [ "tank" ]; } ])).config)
  (checkAssertion "a dataset inside the rolled-back root" "systemd" (zfsEntry { zfs.dataset = "rpool/local/root/app"; })
    "zfs.dataset = \"rpool/local/root/app\" is or lies inside rpool/local/root, which the rollback replaces at every boot")
  (checkAssertion "a dataset above the rolled-back root" "systemd" (zfsEntry { zfs.dataset = "rpool/local"; })
    "zfs.dataset = \"rpool/local\" contains rpool/local/root, which the rollback replaces at every boot")
  (checkAssertion "a dataset of its own inside another entry's, in one storage" "systemd" (zfsWith [
    {
      tabula.persist."/persist".directories = [
        { path = "/var/lib/postgresql"; zfs = { }; }
        { path = "/var/lib/postgresql/16/pg_wal"; zfs.dataset = "rpool/safe/wal"; }
      ];
    }
  ]) "tabula.persist.\"/persist\".directories: /var/lib/postgresql/16/pg_wal: its own dataset inside /var/lib/postgresql's, in one storage, is not supported")
  (checkNoAssertions "a plain entry inside one with its own dataset" (eval "systemd" (zfsWith [
    {
      tabula.persist."/persist".directories = [
        { path = "/var/lib/postgresql"; zfs = { }; }
        "/var/lib/postgresql/16/extra"
      ];
    }
  ])).config)
  (checkAssertion "the storage's own dataset as an entry's" "systemd" (zfsEntry { zfs.dataset = "rpool/safe/persist"; })
    "zfs.dataset = \"rpool/safe/persist\" is rpool/safe/persist, which fileSystems.\"/persist\" mounts")
  (checkAssertion "a dataset above the storage's" "systemd" (zfsEntry { zfs.dataset = "rpool/safe"; })
    "zfs.dataset = \"rpool/safe\" contains rpool/safe/persist")
  (checkAssertion "two entries, one dataset" "systemd" (zfsWith [
    {
      tabula.persist."/persist".directories = [
        { path = "/var/lib/a"; zfs.dataset = "rpool/safe/persist/var-lib-b"; }
        { path = "/var/lib/b"; zfs = { }; }
      ];
    }
  ]) "one dataset is the source of two entries: rpool/safe/persist/var-lib-b")
  (checkAssertion "the default dataset on a storage not on ZFS" "systemd" (btrfsEntry { zfs = { }; })
    "zfs.dataset = null names a child of the dataset mounted at /persist, but /persist is on btrfs: name the dataset")
  (checkAssertion "the default dataset on a storage that is not a mount point of its own" "systemd" (zfsWith [
    { tabula.persist."/persist/cache".directories = [ { path = "/var/cache/app"; zfs = { }; } ]; }
  ]) "/persist/cache is not a mount point of its own (it lies in fileSystems.\"/persist\")")
  (checkNoAssertions "a named dataset on a storage not on ZFS" (eval "systemd" (btrfsEntry { zfs.dataset = "rpool/app"; } ++ [
    {
      fileSystems."/data" = {
        device = "rpool/data";
        fsType = "zfs";
      };
    }
  ])).config)
  (checkAssertion "the default dataset of a path with a space" "systemd" (zfsWith [
    { tabula.persist."/persist".directories = [ { path = "/srv/my files"; zfs = { }; } ]; }
  ]) "/srv/my files holds a character a dataset name cannot")
  (checkAssertion "zfs with inInitrd" "systemd" (zfsEntry { zfs = { }; inInitrd = true; })
    "/var/lib/app: inInitrd with `zfs`: the dataset is created and mounted in stage 2")
  (checkAssertion "a subvolume on a storage on ZFS" "systemd" (zfsEntry { btrfs = { }; })
    "/var/lib/app: `btrfs` makes the source a subvolume inside /persist, but /persist is on zfs")
  (checkAssertion "btrfs.subvolume = false" "systemd" (btrfsEntry { btrfs.subvolume = false; })
    "/var/lib/app: btrfs.subvolume = false: only `true` (a subvolume); for a plain directory remove `btrfs`")
  (checkAssertion "a Btrfs compression the kernel does not take" "systemd" (btrfsEntry { btrfs.compression = "lz4"; })
    "/var/lib/app: btrfs.compression = \"lz4\": expected null or one of zstd, zstd:1")
  (checkAssertion "nodatacow with compression" "systemd" (btrfsEntry { btrfs = { nodatacow = true; compression = "zstd"; }; })
    "/var/lib/app: btrfs.nodatacow with btrfs.compression = \"zstd\": Btrfs neither compresses nodatacow files")
  (checkAssertion "nodatacow with compression = \"none\" (no property can be set on a nodatacow subvolume)" "systemd" (btrfsEntry { btrfs = { nodatacow = true; compression = "none"; }; })
    "/var/lib/app: btrfs.nodatacow with btrfs.compression = \"none\"")
  (checkRefused "a ZFS property value that is not a string" "systemd" (zfsEntry { zfs.properties.copies = 2; }))
  (checkRefused "a dataset name with an empty component" "systemd" (zfsEntry { zfs.dataset = "rpool//app"; }))
  (checkRefused "an unknown key in zfs" "systemd" (zfsEntry { zfs.pool = "rpool"; }))

  # assertions that must fire
  (checkAssertion "btrfs target that fileSystems.\"/\" does not mount" "systemd" (btrfsWith [
    { fileSystems."/".options = lib.mkForce [ "subvol=@" ]; }
  ]) "none of them is the root filesystem")
  (checkAssertion "btrfs target named by another path of the same disk" "systemd" (btrfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/disk/by-uuid/0f3c"; } ]; }
  ]) "no fileSystems entry mounts it")
  (checkAssertion "zfs target that is not the root dataset" "systemd" (zfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool/local/nix"; } ]; }
  ]) "none of them is the root filesystem")
  (checkAssertion "rolled-back filesystem not needed for boot" "systemd" (zfsWith [
    {
      fileSystems."/scratch" = {
        device = "rpool/local/scratch";
        fsType = "zfs";
      };
      tabula.rollback.targets = [ { type = "zfs"; dataset = "rpool/local/scratch"; } ];
    }
  ]) "fileSystems.\"/scratch\".neededForBoot = true")
  (checkAssertion "storage not needed for boot" "systemd" (btrfsWith [
    { fileSystems."/persist".neededForBoot = lib.mkForce false; }
  ]) "set fileSystems.\"/persist\".neededForBoot = true")
  (checkAssertion "storage on the erased root" "systemd" (btrfsWith [
    { tabula.persist."/data".directories = [ "/srv" ]; }
  ]) "/data has no fileSystems entry of its own")
  (checkAssertion "a path persisted twice" "systemd" (btrfsWith [
    {
      fileSystems."/persist2" = {
        device = "/dev/disk/by-label/nixos";
        fsType = "btrfs";
        options = [ "subvol=@persist2" ];
        neededForBoot = true;
      };
      tabula.persist."/persist2".directories = [ "/etc/nixos" ];
    }
  ]) "persisted more than once: /etc/nixos")
  (checkNoAssertions "nested entries, in one storage and in two" (eval "systemd" (btrfsWith [
    {
      fileSystems."/state" = {
        device = "/dev/disk/by-label/nixos";
        fsType = "btrfs";
        options = [ "subvol=@state" ];
        neededForBoot = true;
      };
      tabula.persist."/persist".directories = [ "/var/lib/nixos/extra" ];
      tabula.persist."/state".directories = [ "/var/lib/bluetooth/keys" ];
    }
  ])).config)
  (checkAssertion "a path persisted inside a persisted file" "systemd" (btrfsWith [
    { tabula.persist."/persist".directories = [ "/etc/ssh/ssh_host_ed25519_key/x" ]; }
  ]) "/etc/ssh/ssh_host_ed25519_key/x is inside /etc/ssh/ssh_host_ed25519_key (file): a file has no paths inside it")
  (checkAssertion "an inInitrd path inside one mounted in stage 2" "systemd" (btrfsWith [
    {
      tabula.persist."/persist".directories = [
        {
          path = "/var/lib/nixos/early";
          inInitrd = true;
        }
      ];
    }
  ]) "/var/lib/nixos/early is inside /var/lib/nixos (directory): it has inInitrd and /var/lib/nixos has not")
  (checkAssertion "a home file persisted twice" "systemd" (btrfsWith [
    {
      users.users.alice.isNormalUser = true;
      tabula.persist."/persist".users.alice.files = [ ".zsh_history" ".zsh_history" ];
    }
  ]) "persisted more than once: /home/alice/.zsh_history")
  (checkAssertion "a persisted path that is also a mount point" "systemd" (btrfsWith [
    { tabula.persist."/persist".directories = [ "/var/log" ]; }
  ]) "/var/log is also a fileSystems mount point")
  (checkAssertion "a persisted path under the storage" "systemd" (btrfsWith [
    { tabula.persist."/persist".directories = [ "/persist/cache" ]; }
  ]) "a persisted path lies inside a storage: /persist/cache")
  (checkAssertion "inInitrd with the scripted initrd" "scripted" (btrfsWith [
    { tabula.persist."/persist".files = [ { path = "/etc/machine-id"; inInitrd = true; } ]; }
  ]) "set boot.initrd.systemd.enable = true")
  (checkAssertion "a zfs option on a btrfs target" "systemd" (btrfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/disk/by-label/nixos"; dataset = "rpool/x"; } ]; }
  ]) "dataset belong to the other kind")
  (checkAssertion "a btrfs option on a zfs target" "systemd" (zfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool/local/root"; blank = "@blank"; } ]; }
  ]) "blank belong to the other kind")
  (checkAssertion "oldRoots equal to the root subvolume" "systemd" (btrfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/disk/by-label/nixos"; oldRoots = "@root/old"; } ]; }
  ]) "none inside another")
  (checkAssertion "zfs oldRoots in another pool" "systemd" (zfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool/local/root"; oldRoots = "tank/old_roots"; } ]; }
  ]) "must be a dataset of the same pool")
  (checkAssertion "zfs oldRoots inside the dataset" "systemd" (zfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool/local/root"; oldRoots = "rpool/local/root/old"; } ]; }
  ]) "neither inside nor above the dataset")
  (checkAssertion "a target listed twice" "systemd" (zfsWith [
    { tabula.rollback.targets = [ { type = "zfs"; dataset = "rpool/local/root"; } ]; }
  ]) "a filesystem is listed twice")
  (checkAssertion "btrfs target without a device" "systemd" (btrfsWith [
    { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; } ]; }
  ]) "`device` is required")

  # warnings
  (checkWarning "/var/lib/nixos not persisted, users without uid" "systemd" (zfsWith [
    {
      tabula.persist."/persist".directories = lib.mkForce [ "/etc/ssh" ];
      users.users.alice.isNormalUser = true;
    }
  ]) "/var/lib/nixos is neither persisted nor mounted" true)
  (checkWarning "no /var/lib/nixos warning when it is persisted" "systemd" (zfsWith [
    { users.users.alice.isNormalUser = true; }
  ]) "is neither persisted nor mounted" false)
  (checkWarning "/var/lib/nixos is mounted from stage 1 (scripted initrd): no activation warning" "scripted" [ zfsLayout ]
    "/var/lib/nixos is used by NixOS activation" false)
  (checkEq "/var/lib/nixos, and only it, is mounted from the scripted stage 1 (tabula's own schema)" (map (m: m.path) (eval "scripted" [ zfsLayout ]).config.tabula.scriptedStage1Mounts) [ "/var/lib/nixos" ])
  (checkEq "a nixpkgs without the scripted initrd: the module evaluates, nothing is mounted from a stage-1 hook" (
    let
      c = (eval "systemd-only" [ zfsLayout ]).config;
    in
    [
      c.tabula.scriptedStage1Mounts
      (failedAssertions c)
      (c.boot.initrd ? postMountCommands)
    ]
  ) [ [ ] [ ] false ])
  (check "a persisted path the scripted stage 1 mounts must be owned by root or numeric ids (no user database there)" (
    lib.any (lib.hasInfix "/var/log is mounted by the scripted initrd, which has no user database") (failedAssertions (eval "scripted" [
      zfsLayout
      {
        tabula.persist."/persist".directories = [
          {
            path = "/var/log";
            group = "systemd-journal";
          }
        ];
      }
    ]).config)
  ) "no such assertion")
  (checkWarning "/var/lib/nixos persisted after activation (systemd initrd, without inInitrd)" "systemd" [ zfsLayout ]
    "Set inInitrd = true on it" true)
  (checkWarning "/var/lib/nixos from the initrd: no activation warning" "systemd" [
    zfsLayout
    {
      tabula.persist."/persist".directories = lib.mkForce [
        {
          path = "/var/lib/nixos";
          inInitrd = true;
        }
      ];
    }
  ] "used by NixOS activation" false)
  (checkWarning "zfs-auto-snapshot with a rolled-back dataset" "systemd" (zfsWith [
    { services.zfs.autoSnapshot.enable = true; }
  ]) "services.zfs.autoSnapshot is enabled" true)
  (checkWarning "snapshot warning silenced" "systemd" (zfsWith [
    {
      services.zfs.autoSnapshot.enable = true;
      tabula.rollback.warnSnapshotTools = false;
    }
  ]) "services.zfs.autoSnapshot" false)

  # values the types refuse before anything is rendered
  (checkRefused "subvol= in a target's mountOptions" "systemd" (btrfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/disk/by-label/nixos"; mountOptions = [ "noatime" "subvol=@" ]; } ]; } ]))
  (checkRefused "ro in a btrfs target's mountOptions (the rollback could not write)" "systemd" (btrfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/disk/by-label/nixos"; mountOptions = [ "ro" ]; } ]; } ]))
  (checkRefused "a relative zfsCommand" "systemd" (zfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool/local/root"; zfsCommand = "bin/zfs"; } ]; } ]))
  (checkRefused "a uid of 2^32-1 (no id)" "systemd" (btrfsWith [ { tabula.persist."/persist".directories = [ { path = "/srv"; user = 4294967295; } ]; } ]))
  (checkRefused "a root dataset that is a whole pool" "systemd" (zfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool"; }  ]; } ]))
  (checkRefused "relative persisted path" "systemd" (btrfsWith [ { tabula.persist."/persist".directories = [ "var/log" ]; } ]))
  (checkRefused "persisted path with .." "systemd" (btrfsWith [ { tabula.persist."/persist".directories = [ "/var/../etc" ]; } ]))
  (checkRefused "persisted path with a newline" "systemd" (btrfsWith [ { tabula.persist."/persist".files = [ "/etc/a\nb" ]; } ]))
  (checkRefused "trailing slash" "systemd" (btrfsWith [ { tabula.persist."/persist".directories = [ "/var/log/" ]; } ]))
  (checkRefused "home entry with a leading /" "systemd" (btrfsWith [ { tabula.persist."/persist".users.alice.directories = [ "/Documents" ]; } ]))
  (checkRefused "subvolume with .." "systemd" (btrfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/sda2"; subvolume = "../x"; } ]; } ]))
  (checkRefused "dataset with an empty component" "systemd" (zfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool//root"; } ]; } ]))
  (checkRefused "snapshot with @" "systemd" (zfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "zfs"; dataset = "rpool/local/root"; snapshot = "@blank"; } ]; } ]))
  (checkRefused "symbolic mode in the native option" "systemd" (btrfsWith [ { tabula.persist."/persist".directories = [ { path = "/srv"; mode = "u=rwx"; } ]; } ]))
  (checkRefused "keep.days negative" "systemd" (btrfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/sda2"; keep.days = -1; } ]; } ]))
  (checkRefused "waitSeconds above an hour" "systemd" (btrfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/sda2"; waitSeconds = 3601; } ]; } ]))
  (checkRefused "unknown onFailure" "systemd" (btrfsWith [ { tabula.rollback.onFailure = "panic"; } ]))
  (checkRefused "device path with a newline (unit injection)" "systemd" (btrfsWith [ { tabula.rollback.targets = lib.mkForce [ { type = "btrfs"; device = "/dev/sda\nExecStart=/bin/sh"; } ]; } ]))
  (checkRefused "unit name with a space (directive injection)" "systemd" (btrfsWith [ { tabula.overlays."/nix/store" = { upper = "/u"; work = "/w"; before = [ "a.service b.service" ]; }; } ]))

  # The rules both languages state, against the table of cases the config
  # crate's tests read too (config/rules.json): every case of every rule.
  (
    let
      # Nix strings cannot hold NUL (fromJSON cuts the string there): such a
      # case is tried with U+0001, another control character, instead.
      table = builtins.fromJSON (
        builtins.replaceStrings [ "\\u0000" ] [ "\\u0001" ] (builtins.readFile ../../config/rules.json)
      );
      # a long string, or any other JSON value as it is (the zfsSource and
      # btrfsSource cases are whole objects)
      expand =
        c:
        if builtins.isAttrs c && c ? repeat then
          c.prefix + lib.concatStrings (lib.replicate c.times c.repeat) + c.suffix
        else
          c;
      show = v: lib.substring 0 60 (builtins.toJSON v);
      ruleNames = lib.attrNames table;
      # Stated by the NixOS VM tests' Python, not by lib.nix: tests/run.sh
      # checks vm-tests/nixos/old_root_name.py against these.
      statedInPython = [ "oldRootName" ];
      unknown = lib.filter (r: !(tabulaLib.rules ? ${r}) && !(lib.elem r statedInPython)) ruleNames;
      untested = lib.filter (r: builtins.isFunction tabulaLib.rules.${r} && !(table ? ${r})) (
        lib.attrNames tabulaLib.rules
      );
      wrongOf =
        rule:
        lib.concatMap (
          side:
          map (c: "${rule} must ${side} ${show c}") (
            lib.filter (c: tabulaLib.rules.${rule} (expand c) != (side == "accept")) (map expand table.${rule}.${side})
          )
        ) [ "accept" "refuse" ];
      count = lib.foldl' (n: r: n + lib.length table.${r}.accept + lib.length table.${r}.refuse) 0 ruleNames;
    in
    [
      (checkEq "shared rules: config/rules.json names only rules lib.nix states" unknown [ ])
      (checkEq "shared rules: every rule lib.nix states has its cases in config/rules.json" untested [ ])
      (check "shared rules: config/rules.json has cases (${toString count})" (count > 200) "only ${toString count}")
    ]
    ++ map (
      rule: checkEq "shared rules: lib.nix rules.${rule} decides every case of config/rules.json as the config crate does" (wrongOf rule) [ ]
    ) (lib.filter (r: tabulaLib.rules ? ${r}) ruleNames)
  )

  # option documentation (what nixosOptionsDoc renders)
  (
    let
      docs = lib.filter (o: o.visible && !o.internal && lib.hasPrefix "tabula." o.name) (
        lib.optionAttrSetToDocList
          (lib.evalModules {
            modules = [
              ../options.nix
              {
                _module.check = false;
                _module.args.pkgs = { };
              }
            ];
          }).options
      );
      undocumented = map (o: o.name) (lib.filter (o: (o.description or "") == "") docs);
    in
    [
      (check "option docs: every option has a description" (docs != [ ] && undocumented == [ ]) (builtins.toJSON undocumented))
      (check "option docs: every type, default and example renders" (
        (builtins.tryEval (builtins.deepSeq (map (o: [ o.type o.default or null o.example or null ]) docs) true)).success
      ) "")
    ]
  )

  # pure helpers
  # symbolic modes have one reading, mkdir's (impermanence-lib.nix; run.sh compares it with GNU mkdir)
  (checkEq "lib: symbolic modes" (map (import ../impermanence-lib.nix { inherit lib; }).mkdirMode [ "u=rwx,g=rx,o=" "u=rwx,g=,o=" "a=rx,u+w" "0700" "u=rw,go=r" "a=rwx,o-w" ]) [ "0750" "0700" "0755" "0700" "0644" "0775" ])
  (checkEq "lib: parents" (tabulaLib.parentsOf "/var/lib/nixos") [ "/var" "/var/lib" ])
  (checkEq "lib: no nesting between siblings with a common prefix" (tabulaLib.nestedPairs [ "/var/lib" "/var/library" ]) [ ])
  (checkEq "lib: rollback-unit.json keys all reach the service" (
    let
      s = tabulaLib.serviceFromUnitJSON {
        unit = tabulaLib.rollbackUnitJSON;
        substitute."@tabulaRollback@" = "/x";
      };
    in
    {
      inherit (s) description documentation wants before conflicts;
      after = s.after;
      unit = s.unitConfig;
      service = builtins.attrNames s.serviceConfig;
    }
  ) {
    description = tabulaLib.rollbackUnitJSON.Unit.Description;
    documentation = tabulaLib.rollbackUnitJSON.Unit.Documentation;
    wants = tabulaLib.rollbackUnitJSON.Unit.Wants;
    before = tabulaLib.rollbackUnitJSON.Unit.Before;
    conflicts = tabulaLib.rollbackUnitJSON.Unit.Conflicts;
    after = tabulaLib.rollbackUnitJSON.Unit.After;
    unit.DefaultDependencies = "no";
    service = builtins.attrNames tabulaLib.rollbackUnitJSON.Service;
  })
  (check "lib: an over-long device unit name is refused, not misnamed" (
    !(builtins.tryEval (tabulaLib.deviceUnit ("/dev/disk/by-id/" + lib.concatStrings (lib.replicate 30 "a-b-c-d-e-")))).success
  ) "accepted")
  (check "lib: a non-ASCII device path is refused, not misnamed" (
    !(builtins.tryEval (tabulaLib.escapeSystemdPath (builtins.fromJSON "\"/dev/disk/by-label/caf\\u00e9\""))).success
  ) "accepted")
]
