# impermanence's option declarations (submodule-options.nix: names and
# types as upstream), shared by the NixOS compatibility module
# (impermanence.nix) and its Home Manager module
# (impermanence-home-manager.nix).
{ lib }:

let
  inherit (lib)
    literalExpression
    mkOption
    types
    ;

  tabulaLib = import ./lib.nix { inherit lib; };

  # Fields impermanence gives defaults to are `null` here, so only what the
  # user wrote reaches tabula (whose defaults are the same: root:root 0755,
  # or the user and their primary group in `users.<name>`).
  permOptions = {
    user = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Owner (impermanence: `user`).";
    };
    group = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Group (impermanence: `group`).";
    };
    mode = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Mode of the source when it is created: octal, or symbolic (`u=rwx,g=rx,o=`) converted to the octal mode `mkdir --mode` gives; a symbolic mode outside that model is refused.";
    };
  };

  # Accepted for compatibility; each is warned about when it would change
  # what impermanence does.
  entryCommon = {
    persistentStoragePath = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "Another storage for this entry (a string or a path literal): the entry goes to that storage.";
    };
    hideMount = mkOption {
      type = types.nullOr types.bool;
      default = null;
      description = "Per-entry `x-gvfs-hide` (default: the location's `hideMounts`), on a directory's bind mount only, as impermanence (tabula: the entry's `mountOptions`).";
    };
    allowTrash = mkOption {
      type = types.nullOr types.bool;
      default = null;
      description = "Per-entry `x-gvfs-trash` (default: the location's `allowTrash`), on a directory's bind mount only, as impermanence (tabula: the entry's `mountOptions`).";
    };
  };

  dirType = tabulaLib.entryType {
    key = "directory";
    pathType = types.str;
    description = "The directory.";
    options = permOptions // entryCommon;
  };

  fileType = tabulaLib.entryType {
    key = "file";
    pathType = types.str;
    description = "The file.";
    options = {
      parentDirectory = mkOption {
        type = types.nullOr (types.submodule { options = permOptions; });
        default = null;
        description = "Owner and mode of the file's parent directory when it is created (tabula: the entry's `parentDirectory`).";
      };
      method = mkOption {
        type = types.enum [
          "auto"
          "symlink"
        ];
        default = "auto";
        description = "impermanence's linking method (tabula: the entry's `method`, the same values): `auto` bind-mounts the persisted copy when it exists and otherwise puts a symbolic link to it in place, decided at each boot; `symlink` always puts a symbolic link in place.";
      };
    }
    // entryCommon;
  };

  listsOptions = {
    directories = mkOption {
      type = types.listOf dirType;
      default = [ ];
      description = "Directories to persist.";
    };
    files = mkOption {
      type = types.listOf fileType;
      default = [ ];
      description = "Files to persist.";
    };
  };

  # A storage location: NixOS (withUsers) or Home Manager (paths relative
  # to the home, no `users`).
  locationModule =
    { withUsers }:
    { name, ... }:
    {
      options = listsOptions // {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether to enable this persistent storage location.";
        };
        persistentStoragePath = mkOption {
          type = types.path;
          default = name;
          defaultText = literalExpression "‹name›";
          description = "The persistent storage, a string or a path literal (tabula: the key of `tabula.persist`).";
        };
        hideMounts = mkOption {
          type = types.bool;
          default = false;
          description = "`x-gvfs-hide` on the directories' bind mounts (tabula: each entry's `mountOptions`).";
        };
        allowTrash = mkOption {
          type = types.bool;
          default = false;
          description = "`x-gvfs-trash` on the directories' bind mounts (tabula: each entry's `mountOptions`).";
        };
        enableDebugging = mkOption {
          type = types.bool;
          default = false;
          description = "impermanence's trace output of its shell scripts; tabula runs none (its generator logs to the journal), so there is nothing to enable.";
        };
        enableWarnings = mkOption {
          type = types.bool;
          default = true;
          description = "Non-critical warnings of the compatibility module for this location (the deprecated `users.<name>.home`); tabula's own warnings are not affected.";
        };
      }
      // lib.optionalAttrs withUsers {
        users = mkOption {
          type = types.attrsOf (
            types.submodule {
              options = listsOptions // {
                home = mkOption {
                  type = types.nullOr types.path;
                  default = null;
                  description = "Removed in impermanence (the home is users.users.<name>.home); accepted with a warning when it is that path.";
                };
              };
            }
          );
          default = { };
          description = "Per-user directories and files, relative to the user's home.";
        };
      };
    };

in
{
  inherit listsOptions locationModule;
}
