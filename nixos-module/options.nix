# Options of the tabula module. They mirror the config contract
# (docs/config.md) key for key; render.nix turns them into the JSON file.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkOption
    types
    ;

  tabulaLib = import ./lib.nix { inherit lib; };

  # --- value types of the contract ---------------------------------------------
  # Each is the base type narrowed by one rule of lib.nix `rules` (the
  # config crate's rule, tested against the same cases, config/rules.json).

  ruleType =
    rule: base: description:
    types.addCheck base tabulaLib.rules.${rule}
    // {
      name = rule;
      inherit description;
    };

  absolutePath = ruleType "absolutePath" types.str "absolute, normalised path (no `.`, `..`, `//` or trailing `/`)";
  persistedPath = ruleType "persistedPath" types.str "absolute, normalised path (no `.`, `..`, `//`, trailing `/` or `\\`, no surrounding space)";
  relativePath = ruleType "relativePath" types.str "path relative to the home directory";
  subvolumeName = ruleType "subvolume" types.str "Btrfs subvolume name relative to the top level (e.g. `@old_roots`)";
  rootSubvolumeName = ruleType "rootSubvolume" types.str "Btrfs subvolume name relative to the top level (e.g. `@root`), last component at most 244 bytes";
  rootDatasetName = ruleType "rootDataset" types.str "ZFS dataset inside a pool (`pool/child/...`), at most 244 bytes";
  snapshotName = ruleType "snapshot" types.str "ZFS snapshot name without `@`";
  octalMode = ruleType "mode" types.str "octal mode string such as `\"0700\"`";
  userOrGroup = ruleType "userOrGroup" (types.either types.int types.str) "user or group name (resolved at boot), or numeric id";
  unitName = ruleType "unitName" types.str "systemd unit name (`nix-daemon.service`)";
  mountOption = ruleType "mountOption" types.str "mount option (no `,`, space, `\\` or `\"`)";
  btrfsMountOption = ruleType "btrfsMountOption" types.str "mount option for the Btrfs top level (not `ro`, `subvol=`, `subvolid=`, `rescue=`, `norecovery`, `bind`, `rbind`, `remount`)";
  zfsCommand = ruleType "zfsCommand" types.str "`zfs`, or the absolute path of the zfs program";
  waitSeconds = ruleType "waitSeconds" types.int "seconds, 0 to 3600";
  keepCount = ruleType "keepCount" types.int "count, 0 to 4294967295";

  # --- rollback ----------------------------------------------------------------

  keepModule = {
    options = {
      days = mkOption {
        type = types.nullOr keepCount;
        default = 30;
        description = "Delete old roots older than this many days; `null`: no age limit.";
      };
      min = mkOption {
        type = keepCount;
        default = 1;
        description = "Always keep at least the newest `min` old roots, whatever their age.";
      };
      max = mkOption {
        type = types.nullOr keepCount;
        default = null;
        description = "Keep at most this many old roots, newest first; `min` wins over `max`.";
      };
    };
  };

  # One flat submodule for both kinds: `type` selects the kind, and every
  # option of the other kind must stay unset (render.nix asserts it). The
  # defaults that depend on the kind read `config.type`.
  targetModule =
    { config, ... }:
    let
      btrfs = config.type == "btrfs";
      zfs = config.type == "zfs";
    in
    {
      options = {
        type = mkOption {
          type = types.enum [
            "btrfs"
            "zfs"
          ];
          description = "The filesystem: `btrfs` (rotate a subvolume) or `zfs` (roll a dataset back to a snapshot).";
        };

        # btrfs
        device = mkOption {
          type = types.nullOr absolutePath;
          default = null;
          example = "/dev/disk/by-label/nixos";
          description = "Btrfs only, required: the block device holding the filesystem, exactly as `fileSystems.\"/\".device` names it.";
        };
        mountOptions = mkOption {
          type = types.listOf btrfsMountOption;
          default = [ ];
          example = [ "compress=zstd" ];
          description = "Btrfs only: extra options for mounting the top level (`subvolid=5` is always added; `subvol=`, `subvolid=` and what would make the mount read-only or not a fresh mount are refused).";
        };
        subvolume = mkOption {
          type = types.nullOr rootSubvolumeName;
          default = if btrfs then "@root" else null;
          defaultText = literalExpression ''if type == "btrfs" then "@root" else null'';
          description = "Btrfs only: the root subvolume to roll back.";
        };
        blank = mkOption {
          type = types.nullOr subvolumeName;
          default = null;
          example = "@blank";
          description = "Btrfs only: when set, the new root is a writable snapshot of this subvolume; when `null`, an empty subvolume.";
        };
        waitSeconds = mkOption {
          type = types.nullOr waitSeconds;
          default = if btrfs then 30 else null;
          defaultText = literalExpression ''if type == "btrfs" then 30 else null'';
          description = "Btrfs only: how long `tabula-rollback` waits for `device` to appear.";
        };

        # zfs
        dataset = mkOption {
          type = types.nullOr rootDatasetName;
          default = null;
          example = "rpool/local/root";
          description = "ZFS only, required: the root dataset, exactly as `fileSystems.\"/\".device` names it.";
        };
        snapshot = mkOption {
          type = types.nullOr snapshotName;
          default = if zfs then "blank" else null;
          defaultText = literalExpression ''if type == "zfs" then "blank" else null'';
          description = "ZFS only: roll back to `dataset@snapshot`.";
        };
        zfsCommand = mkOption {
          type = types.nullOr zfsCommand;
          default = if zfs then "zfs" else null;
          defaultText = literalExpression ''if type == "zfs" then "zfs" else null'';
          description = ''
            ZFS only: the `zfs` program, absolute or looked up in `PATH`. The
            default finds the `zfs` that nixpkgs' ZFS module puts into both
            kinds of initrd.
          '';
        };

        # both
        oldRoots = mkOption {
          type = types.nullOr types.str;
          default = if btrfs then "@old_roots" else null;
          defaultText = literalExpression ''if type == "btrfs" then "@old_roots" else null'';
          example = "rpool/local/old_roots";
          description = ''
            Where previous roots are kept, as `<oldRoots>/<creation time>`:
            a subvolume name (Btrfs) or a dataset name in the same pool
            (ZFS). `null` deletes the previous root (Btrfs) or discards it
            with `zfs rollback -r` (ZFS).
          '';
        };
        keep = mkOption {
          type = types.submodule keepModule;
          default = { };
          description = "Pruning of `oldRoots`. An old root renamed to anything but its timestamp is pinned: never pruned.";
        };
      };
    };

  # --- persistence ---------------------------------------------------------------

  # An entry: a path string, or { path, user, group, mode, inInitrd, ownership,
  # mountOptions, parentDirectory, method }. Unset
  # fields are left to the generator's defaults (docs/config.md).
  entryOptions = {
    user = mkOption {
      type = types.nullOr userOrGroup;
      default = null;
      description = "Owner of the source, the target and created parents (default: `root`, or the user for `users.<name>` entries).";
    };
    group = mkOption {
      type = types.nullOr userOrGroup;
      default = null;
      description = "Group (default: `root`, or the user's primary group for `users.<name>` entries).";
    };
    mode = mkOption {
      type = types.nullOr octalMode;
      default = null;
      description = "Mode (default `0755` for directories, `0644` for files).";
    };
    inInitrd = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Mount it from the systemd initrd, under `/sysroot`, so it exists
        when stage 2 starts (`/etc/machine-id`, SSH host keys). Needs
        `boot.initrd.systemd.enable`.
      '';
    };
    parentDirectory = mkOption {
      type = types.nullOr (
        types.submodule {
          options = {
            user = mkOption {
              type = types.nullOr userOrGroup;
              default = null;
              description = "Owner (default: `root`, or the user for `users.<name>` entries).";
            };
            group = mkOption {
              type = types.nullOr userOrGroup;
              default = null;
              description = "Group (default: `root`, or the user's primary group).";
            };
            mode = mkOption {
              type = types.nullOr octalMode;
              default = null;
              description = "Mode (default `0755`).";
            };
          };
        }
      );
      default = null;
      description = "Owner and mode of the entry's parent directory, on each side where it is created (not the home, which is the user's, `0700`).";
    };
    method = mkOption {
      type = types.nullOr (
        types.enum [
          "bind"
          "symlink"
          "auto"
        ]
      );
      default = null;
      description = ''
        Files only. `"bind"` (the default when unset): a bind mount of the
        persisted copy (created empty when missing). `"symlink"`: a symbolic
        link to it, placed by the prepare step, for programs that replace the
        file by rename (not for `/etc/machine-id`, not with `inInitrd`).
        `"auto"` (impermanence's default): decided at each boot, a bind mount
        when the persisted copy exists, else a symbolic link to where it will
        be, not created, so that the program's first write lands in storage
        (`/etc/machine-id` is always bound).
      '';
    };
    mountOptions = mkOption {
      type = types.listOf mountOption;
      default = [ ];
      description = "Extra options for this entry's bind mount, after its storage's (`x-gvfs-hide` on one directory only, for example).";
    };
    ownership = mkOption {
      type = types.nullOr (
        types.enum [
          "create"
          "enforce"
        ]
      );
      default = null;
      description = ''
        `"create"` (the default when unset): `user`, `group` and `mode` are
        applied only to a source the generator creates; existing data keeps
        its owner and mode. `"enforce"`: an existing source and mount point
        are corrected to them at every boot (docs/config.md says why
        `create` is the default).
      '';
    };
  };

  entries =
    pathType: description:
    mkOption {
      type = types.listOf (
        tabulaLib.entryType {
          key = "path";
          inherit pathType;
          description = "The persisted path.";
          options = entryOptions;
        }
      );
      default = [ ];
      inherit description;
    };

  userModule =
    { name, ... }:
    {
      options = {
        home = mkOption {
          type = persistedPath;
          default = config.users.users.${name}.home or "/home/${name}";
          defaultText = literalExpression ''config.users.users.''${name}.home or "/home/''${name}"'';
          description = "The user's home directory; entries are relative to it.";
        };
        directories = entries relativePath "Directories of the user's home to persist, relative to `home`.";
        files = entries relativePath "Files of the user's home to persist, relative to `home`.";
      };
    };

  storageModule =
    { name, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether to persist into this storage.";
        };
        storage = mkOption {
          type = persistedPath;
          default = name;
          defaultText = literalExpression "‹name›";
          description = "Where persisted data lives; an entry's source is `storage` + its absolute path.";
        };
        hideMounts = mkOption {
          type = types.bool;
          default = false;
          description = "Add `x-gvfs-hide` to the bind mounts, so desktops do not show them as drives.";
        };
        mountOptions = mkOption {
          type = types.listOf mountOption;
          default = [ ];
          description = "Extra options for every bind mount of this storage.";
        };
        directories = entries persistedPath "Directories to persist.";
        files = entries persistedPath ''
          Files to persist. A file is created (empty, with its owner and mode)
          on both sides if missing, then bind-mounted, unless its `method`
          says otherwise.
        '';
        users = mkOption {
          type = types.attrsOf (types.submodule userModule);
          default = { };
          description = "Per-user directories and files, relative to each user's home.";
        };
      };
    };

  overlayModule =
    { name, ... }:
    {
      options = {
        where = mkOption {
          type = persistedPath;
          default = name;
          defaultText = literalExpression "‹name›";
          description = "The mount point.";
        };
        lower = mkOption {
          type = types.nonEmptyListOf persistedPath;
          default = [ name ];
          defaultText = literalExpression "[ ‹name› ]";
          description = "Lower directories, top first. The default overlays the mount point on itself.";
        };
        upper = mkOption {
          type = persistedPath;
          example = "/mnt/nix-ssd/upper";
          description = "Upper directory.";
        };
        work = mkOption {
          type = persistedPath;
          example = "/mnt/nix-ssd/work";
          description = "Work directory, on the same filesystem as `upper`.";
        };
        whenMounted = mkOption {
          type = types.nullOr persistedPath;
          default = null;
          example = "/mnt/nix-ssd";
          description = "Mount only if this is a mount point; otherwise boot on the lower layers alone and say why in the journal.";
        };
        before = mkOption {
          type = types.listOf unitName;
          default = [ ];
          example = [
            "nix-daemon.service"
            "nix-daemon.socket"
          ];
          description = "Units ordered after the overlay, and wanting it.";
        };
        required = mkOption {
          type = types.bool;
          default = false;
          description = "`true`: the units in `before` require the overlay instead of wanting it.";
        };
        mountOptions = mkOption {
          type = types.listOf mountOption;
          default = [ ];
          description = "Extra overlayfs options.";
        };
      };
    };
in
{
  options.tabula = {
    enable = mkEnableOption "tabula, boot-time root rollback and persistence";

    package = mkOption {
      type = types.package;
      default = pkgs.pkgsStatic.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.pkgsStatic.callPackage ./package.nix { } (the flake module sets the flake's package)";
      description = "The package providing `tabula-rollback` and `tabula-generator` (static binaries).";
    };

    rollback = {
      targets = mkOption {
        type = types.listOf (types.submodule targetModule);
        default = [ ];
        example = literalExpression ''
          [
            { type = "btrfs"; device = "/dev/disk/by-label/nixos"; subvolume = "@root"; oldRoots = "@old_roots"; }
            { type = "zfs"; dataset = "rpool/local/root"; snapshot = "blank"; }
          ]
        '';
        description = ''
          Filesystems to roll back in stage 1, in order. Each must be the one
          a `fileSystems` entry needed for boot mounts, and one of them the
          root (`fileSystems."/"`).
        '';
      };

      onFailure = mkOption {
        type = types.enum [
          "continue"
          "block"
        ];
        default = "continue";
        description = ''
          What a failed rollback does to the boot. `continue`: log why and
          boot whatever root exists (nothing has been deleted: the binary
          stops before the next destructive step). `block`: stop the boot
          (systemd initrd: `initrd.target` requires the rollback and fails
          into emergency mode; scripted initrd: stage 1's failure prompt).
        '';
      };

      warnSnapshotTools = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Warn when a ZFS snapshot tool (zfs-auto-snapshot, sanoid, znapzend)
          is enabled while a ZFS dataset is rolled back: `zfs rollback -r`
          destroys every snapshot taken after `@snapshot`. Set to `false`
          once the tool excludes the dataset.
        '';
      };
    };

    persist = mkOption {
      type = types.attrsOf (types.submodule storageModule);
      default = { };
      example = literalExpression ''
        {
          "/persist" = {
            directories = [ "/var/log" "/var/lib/nixos" { path = "/var/lib/bluetooth"; mode = "0700"; } ];
            files = [ { path = "/etc/machine-id"; inInitrd = true; } ];
            users.alice.directories = [ "Documents" { path = ".ssh"; mode = "0700"; } ];
          };
        }
      '';
      description = ''
        What survives the rollback, per persistent storage (the attribute
        name is the storage path). The same shape as impermanence's
        `environment.persistence`, with `path` where impermanence says
        `directory` or `file`.
      '';
    };

    overlays = mkOption {
      type = types.attrsOf (types.submodule overlayModule);
      default = { };
      example = literalExpression ''
        {
          "/nix/store" = {
            upper = "/mnt/nix-ssd/upper";
            work = "/mnt/nix-ssd/work";
            whenMounted = "/mnt/nix-ssd";
            before = [ "nix-daemon.service" "nix-daemon.socket" ];
          };
        }
      '';
      description = "Overlay mounts made by the generator in stage 2 (attribute name: the mount point).";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      description = "The rendered `/etc/tabula/config.json` (read-only; for inspection and tests).";
    };

    settings = mkOption {
      type = types.attrs;
      readOnly = true;
      internal = true;
      description = "The value rendered into `configFile`.";
    };
  };
}
