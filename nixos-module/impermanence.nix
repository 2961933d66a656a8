# Compatibility with nix-community/impermanence's NixOS module: declares
# `environment.persistence` with impermanence's option names and maps it onto
# `tabula.persist`, so a configuration switches by changing one import:
#
#   imports = [ impermanence.nixosModules.impermanence ];   # before
#   imports = [ tabula.nixosModules.impermanence ];         # after
#
# What has no equivalent is accepted, warned about and documented in
# docs/nixos.md ("What the compatibility module does not map"): per-entry
# `hideMount`/`allowTrash` that differ from their storage, `parentDirectory`,
# `method = "symlink"` (tabula always bind-mounts), `enableDebugging`, and
# the Home Manager module.
{
  config,
  lib,
  utils,
  ...
}:

let
  inherit (lib)
    attrValues
    concatMap
    filter
    literalExpression
    mkDefault
    mkIf
    mkOption
    optional
    types
    ;

  tabulaLib = import ./lib.nix { inherit lib; };

  cfg = config.environment.persistence;
  enabled = filter (l: l.enable) (attrValues cfg);

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
      description = "Mode, octal or symbolic (`u=rwx,g=rx,o=`), converted to octal.";
    };
  };

  # Accepted for compatibility; each is warned about when it would change
  # what impermanence does.
  entryCommon = {
    persistentStoragePath = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Another storage for this entry (mapped: the entry goes to that storage).";
    };
    hideMount = mkOption {
      type = types.nullOr types.bool;
      default = null;
      description = "Per-entry `x-gvfs-hide` (not mapped when it differs from the storage's `hideMounts`).";
    };
    allowTrash = mkOption {
      type = types.nullOr types.bool;
      default = null;
      description = "Per-entry `x-gvfs-trash` (not mapped when it differs from the storage's `allowTrash`).";
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
        description = "Owner and mode of the file's created parents (not mapped).";
      };
      method = mkOption {
        type = types.enum [
          "auto"
          "symlink"
        ];
        default = "auto";
        description = "impermanence's linking method; tabula always bind-mounts (`symlink` is not mapped).";
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

  locationModule =
    { name, ... }:
    {
      options = listsOptions // {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether to enable this persistent storage location.";
        };
        persistentStoragePath = mkOption {
          type = types.str;
          default = name;
          defaultText = literalExpression "‹name›";
          description = "The persistent storage (tabula: the key of `tabula.persist`).";
        };
        hideMounts = mkOption {
          type = types.bool;
          default = false;
          description = "`x-gvfs-hide` on the bind mounts (tabula: `hideMounts`).";
        };
        allowTrash = mkOption {
          type = types.bool;
          default = false;
          description = "`x-gvfs-trash` on the bind mounts (tabula: added to `mountOptions`).";
        };
        enableDebugging = mkOption {
          type = types.bool;
          default = false;
          description = "Accepted and ignored: tabula has no shell scripts to trace.";
        };
        enableWarnings = mkOption {
          type = types.bool;
          default = true;
          description = "Warn about what this location sets that tabula does not map.";
        };
        users = mkOption {
          type = types.attrsOf (types.submodule { options = listsOptions; });
          default = { };
          description = "Per-user directories and files, relative to the user's home.";
        };
      };
    };

  # --- mapping -----------------------------------------------------------------

  perms =
    e:
    lib.filterAttrs (_: v: v != null) {
      inherit (e) user group;
      mode = if e.mode == null then null else tabulaLib.modeToOctal e.mode;
    };

  mapDir = e: { path = e.directory; } // perms e;
  # impermanence mounts the directories NixOS needs for boot (nixpkgs'
  # pathsNeededForBoot: /var/lib/nixos, /var/log, ...) from the initrd, before
  # activation; tabula does the same with inInitrd when the initrd runs
  # systemd (with the scripted initrd it cannot, and says so in a warning).
  mapSystemDir =
    e:
    mapDir e
    // lib.optionalAttrs (config.boot.initrd.systemd.enable && lib.elem e.directory (utils.pathsNeededForBoot or tabulaLib.pathsNeededForBoot)) {
      inInitrd = true;
    };
  mapFile = e: { path = e.file; };

  storageOf = l: e: if e.persistentStoragePath == null then l.persistentStoragePath else e.persistentStoragePath;

  # Entries keep their order; an entry with its own persistentStoragePath
  # goes to that storage.
  userEntries =
    l: kind:
    concatMap (
      name:
      map (e: {
        inherit name e;
      }) l.users.${name}.${kind}
    ) (lib.attrNames l.users);

  storagePaths = lib.unique (
    concatMap (
      l:
      [ l.persistentStoragePath ]
      ++ map (storageOf l) (l.directories ++ l.files)
      ++ map (u: storageOf l u.e) (userEntries l "directories" ++ userEntries l "files")
    ) enabled
  );

  storageFor =
    sp:
    let
      own = filter (l: l.persistentStoragePath == sp) enabled;
      pick = list: filter (e: storageOf e.l e.e == sp) list;
      tagged = kind: concatMap (l: map (e: { inherit l e; }) l.${kind}) enabled;
      taggedUsers = kind: concatMap (l: map (u: u // { inherit l; }) (userEntries l kind)) enabled;
      usersOf =
        kind: f:
        lib.foldl' (
          acc: u:
          acc
          // {
            ${u.name} = (acc.${u.name} or { }) // {
              ${kind} = (acc.${u.name}.${kind} or [ ]) ++ [ (f u.e) ];
            };
          }
        ) { } (pick (taggedUsers kind));
    in
    {
      hideMounts = lib.any (l: l.hideMounts) own;
      mountOptions = optional (lib.any (l: l.allowTrash) own) "x-gvfs-trash";
      directories = map (t: mapSystemDir t.e) (pick (tagged "directories"));
      files = map (t: mapFile t.e) (pick (tagged "files"));
      users = lib.recursiveUpdate (usersOf "directories" mapDir) (usersOf "files" mapFile);
    };

  # --- what is not mapped --------------------------------------------------------

  unmapped =
    l:
    let
      entries = l.directories ++ l.files ++ concatMap (u: u.directories ++ u.files) (attrValues l.users);
      files = l.files ++ concatMap (u: u.files) (attrValues l.users);
      label = e: e.directory or e.file;
    in
    map (e: "${label e}: hideMount = ${lib.boolToString e.hideMount} differs from the location's hideMounts; tabula sets x-gvfs-hide per storage") (
      filter (e: e.hideMount != null && e.hideMount != l.hideMounts) entries
    )
    ++ map (e: "${label e}: allowTrash = ${lib.boolToString e.allowTrash} differs from the location's allowTrash; tabula sets x-gvfs-trash per storage") (
      filter (e: e.allowTrash != null && e.allowTrash != l.allowTrash) entries
    )
    ++ map (e: "${e.file}: parentDirectory is not mapped; tabula creates parents root:root 0755 (in a home: the user's, 0700 for the home itself)") (
      filter (e: e.parentDirectory != null) files
    )
    ++ map (e: "${e.file}: method = \"symlink\" is not mapped; tabula bind-mounts every file") (
      filter (e: e.method == "symlink") files
    );
in
{
  imports = [ ./default.nix ];

  options.environment.persistence = mkOption {
    type = types.attrsOf (types.submodule locationModule);
    default = { };
    description = ''
      impermanence's `environment.persistence`, provided by tabula's
      compatibility module and mapped onto `tabula.persist`.
    '';
  };

  config = mkIf (enabled != [ ]) {
    tabula.enable = mkDefault true;
    tabula.persist = lib.genAttrs storagePaths storageFor;

    warnings = concatMap (
      l:
      map (w: "environment.persistence.\"${l.persistentStoragePath}\": ${w}") (
        if l.enableWarnings then unmapped l else [ ]
      )
    ) enabled;
  };
}
