# Minimal declarations of the NixOS options the tabula module reads or sets,
# with the types nixpkgs gives them (nixos/modules/system/boot/stage-1.nix,
# systemd/initrd.nix, system/boot/systemd.nix, tasks/filesystems.nix,
# config/users-groups.nix, system/etc/etc.nix, misc/assertions.nix). A
# misspelt option or a value of the wrong type in the module fails the
# evaluation here as it would in NixOS. Only what tabula touches is declared.
#
# systemd stage 1 is the default, as in nixpkgs since 26.05. The scripted
# initrd's options are in stubs-scripted.nix: a test imports it to stand for
# a nixpkgs that still has them, or leaves it out to stand for one where the
# scripted initrd is gone (planned for 26.11).
{ lib, ... }:

let
  inherit (lib) mkOption types;

  unitOption = types.oneOf [
    types.bool
    types.int
    types.str
    (types.listOf types.str)
  ];
  unitNames = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  # files by target path, each { source } (environment.etc, contents)
  filesFrom =
    sourceType:
    mkOption {
      type = types.attrsOf (
        types.submodule {
          options.source = mkOption { type = sourceType; };
        }
      );
      default = { };
    };

  # boot.initrd.systemd.services.<name>: the unit options tabula may use
  # (nixos/lib/systemd-unit-options.nix), nothing else.
  serviceModule = {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      description = mkOption {
        type = types.singleLineStr;
        default = "";
      };
      documentation = unitNames;
      after = unitNames;
      before = unitNames;
      wants = unitNames;
      requires = unitNames;
      requisite = unitNames;
      bindsTo = unitNames;
      partOf = unitNames;
      conflicts = unitNames;
      wantedBy = unitNames;
      requiredBy = unitNames;
      unitConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
      # stage 2 only in nixpkgs; harmless in the initrd stub
      path = mkOption {
        type = types.listOf (types.either types.package types.str);
        default = [ ];
      };
      overrideStrategy = mkOption {
        type = types.enum [
          "asDropinIfExists"
          "asDropin"
        ];
        default = "asDropinIfExists";
      };
    };
  };

  # The real type of these is utils.systemdUtils.types.initrdStorePath:
  # strings or packages (or { source; ... }).
  storePath = types.either types.str types.package;
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    environment.etc = filesFrom types.path;

    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    system.checks = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    fileSystems = mkOption {
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              mountPoint = mkOption {
                type = types.str;
                default = name;
              };
              device = mkOption {
                type = types.nullOr types.str;
                default = null;
              };
              label = mkOption {
                type = types.nullOr types.str;
                default = null;
              };
              fsType = mkOption {
                type = types.str;
                default = "auto";
              };
              options = mkOption {
                type = types.nonEmptyListOf types.str;
                default = [ "defaults" ];
              };
              neededForBoot = mkOption {
                type = types.bool;
                default = false;
              };
            };
          }
        )
      );
      default = { };
    };

    users.users = mkOption {
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              home = mkOption {
                type = types.str;
                default = "/var/empty";
              };
              uid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
              isNormalUser = mkOption {
                type = types.bool;
                default = false;
              };
              group = mkOption {
                type = types.str;
                default = "";
              };
            };
            # nixpkgs: a normal user's primary group is "users" unless set
            config = {
              home = lib.mkIf (name != "root") (lib.mkDefault "/home/${name}");
              group = lib.mkIf config.isNormalUser (lib.mkDefault "users");
            };
          }
        )
      );
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.gid = mkOption {
            type = types.nullOr types.int;
            default = null;
          };
        }
      );
      default = { };
    };

    boot.initrd = {
      systemd = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        services = mkOption {
          type = types.attrsOf (types.submodule serviceModule);
          default = { };
        };
        storePaths = mkOption {
          type = types.listOf storePath;
          default = [ ];
        };
        extraBin = mkOption {
          type = types.attrsOf types.path;
          default = { };
        };
        contents = filesFrom types.path;
      };
    };

    # systemd.services.<name> in stage 2: the same unit options
    systemd.services = mkOption {
      type = types.attrsOf (types.submodule serviceModule);
      default = { };
    };

    systemd.generators = mkOption {
      type = types.attrsOf types.path;
      default = { };
    };

    # nixos/modules/tasks/filesystems/zfs.nix
    boot.zfs.package = mkOption {
      type = types.package;
      default = {
        type = "derivation";
        name = "zfs-stub";
        outPath = "/nix/store/44444444444444444444444444444444-zfs-stub";
      };
    };
    boot.zfs.extraPools = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    services.zfs.autoSnapshot.enable = mkOption {
      type = types.bool;
      default = false;
    };
  };
}
