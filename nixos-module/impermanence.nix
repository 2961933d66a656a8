# Compatibility with nix-community/impermanence's NixOS module: declares
# `environment.persistence` with impermanence's option names and types and
# maps it onto `tabula.persist`, so a configuration switches by changing one
# import:
#
#   imports = [ impermanence.nixosModules.impermanence ];   # before
#   imports = [ tabula.nixosModules.impermanence ];         # after
#
# Read as impermanence reads it: paths joined like its concatPaths (trailing
# and repeated slashes dropped; "." in `users.<name>.directories` is the
# whole home), modes as `mkdir --mode` makes them (impermanence-lib.nix).
# What tabula cannot do the same way is refused by an assertion that says
# why (a `parentDirectory` owner or mode other than the defaults,
# `method = "symlink"`, a per-entry `hideMount`/`allowTrash` that differs
# from its storage's, a mode mkdir would read differently); nothing is
# accepted and ignored. docs/nixos.md "Migrating from impermanence" lists
# what still differs.
{
  config,
  lib,
  options,
  utils,
  ...
}:

let
  inherit (lib)
    attrNames
    attrValues
    concatMap
    filter
    mkDefault
    mkIf
    mkOption
    optional
    types
    ;

  tabulaLib = import ./lib.nix { inherit lib; };
  compat = import ./impermanence-lib.nix { inherit lib; };

  cfg = config.environment.persistence;
  # impermanence's own locations, then every Home Manager user's
  # `home.persistence` as a location holding that user's entries only
  enabled = filter (l: l.enable) (attrValues cfg) ++ homeManagerLocations;
  homeManagerUsers = config.home-manager.users or { };
  homeManagerLocations = concatMap (
    key:
    let
      hm = homeManagerUsers.${key}.home;
    in
    map (
      l:
      l
      // {
        directories = [ ];
        files = [ ];
        users.${hm.username} = {
          inherit (l) directories files;
          home = null;
        };
        homeManager = {
          inherit (hm) username;
          home = toString hm.homeDirectory;
        };
      }
    ) (filter (l: l.enable) (attrValues (hm.persistence or { })))
  ) (attrNames homeManagerUsers);

  inherit (import ./impermanence-options.nix { inherit lib; }) locationModule;

  # --- mapping -----------------------------------------------------------------

  # Paths as impermanence joins them (concatPaths: trailing and repeated
  # slashes dropped), with "." components resolved as the kernel would.
  storagePathOf = p: compat.resolveDots (compat.concatPaths [ (toString p) ]);
  locStorage = l: storagePathOf l.persistentStoragePath;
  storageOf = l: e: if e.persistentStoragePath == null then locStorage l else storagePathOf e.persistentStoragePath;
  sysPath = p: compat.resolveDots (compat.concatPaths [ "/" p ]);
  # relative to the home; "" is the home itself (impermanence: ".")
  userRel = p: lib.removePrefix "/" (sysPath p);
  homeOf = name: config.users.users.${name}.home or "/home/${name}";
  # a Home Manager user's home is home.homeDirectory
  homeIn = l: name: if l ? homeManager then l.homeManager.home else homeOf name;
  groupOf =
    name:
    let
      g = config.users.users.${name}.group or "";
    in
    if g == "" then null else g;

  octalMode = m: if m == null then null else compat.mkdirMode m;
  perms =
    e:
    lib.filterAttrs (_: v: v != null) {
      inherit (e) user group;
      mode = octalMode e.mode;
    };

  # impermanence mounts the directories NixOS needs for boot (nixpkgs'
  # pathsNeededForBoot: /var/lib/nixos, /var/log, ...) from the initrd, before
  # activation; tabula does the same with inInitrd when the initrd runs
  # systemd (with the scripted initrd it cannot, and says so in a warning).
  neededForBoot = path: lib.elem path (utils.pathsNeededForBoot or tabulaLib.pathsNeededForBoot);
  initrdFlag = path: lib.optionalAttrs (config.boot.initrd.systemd.enable && neededForBoot path) { inInitrd = true; };

  # Every entry of every enabled location, flattened: where it goes
  # (storage, system or a user's list) and what it says.
  records = concatMap (
    l:
    let
      entry = kind: user: e: value: {
        inherit kind user value l e;
        home = if user == null then null else homeIn l user;
        storage = storageOf l e;
        hide = if e.hideMount == null then l.hideMounts else e.hideMount;
        trash = if e.allowTrash == null then l.allowTrash else e.allowTrash;
      };
      userRecords =
        name:
        let
          u = l.users.${name};
          dir =
            e:
            let
              rel = userRel e.directory;
            in
            # "." persists the whole home: impermanence creates it as the
            # user's, 0700, before any entry (so the entry's own mode is moot)
            if rel == "" then
              entry "directories" null e (
                {
                  path = homeIn l name;
                  user = name;
                  mode = "0700";
                }
                // lib.optionalAttrs (groupOf name != null) { group = groupOf name; }
              )
            else
              entry "directories" name e ({ path = rel; } // perms e);
        in
        map dir u.directories ++ map (e: entry "files" name e { path = userRel e.file; }) u.files;
    in
    map (e: entry "directories" null e ({ path = sysPath e.directory; } // perms e // initrdFlag (sysPath e.directory))) l.directories
    ++ map (e: entry "files" null e { path = sysPath e.file; }) l.files
    ++ concatMap userRecords (attrNames l.users)
  ) enabled;

  storagePaths = lib.unique (map locStorage enabled ++ map (r: r.storage) records);
  storageHide = sp: lib.any (l: l.hideMounts) (filter (l: locStorage l == sp) enabled);
  storageTrash = sp: lib.any (l: l.allowTrash) (filter (l: locStorage l == sp) enabled);

  storageFor =
    sp:
    let
      rs = filter (r: r.storage == sp) records;
      values = kind: user: map (r: r.value) (filter (r: r.kind == kind && r.user == user) rs);
    in
    {
      hideMounts = storageHide sp;
      mountOptions = optional (storageTrash sp) "x-gvfs-trash";
      directories = values "directories" null;
      files = values "files" null;
      users = lib.genAttrs (lib.unique (lib.concatMap (r: optional (r.user != null) r.user) rs)) (name: {
        home = (lib.findFirst (r: r.user == name) null rs).home;
        directories = values "directories" name;
        files = values "files" name;
      });
    };

  # --- what tabula refuses, and why ------------------------------------------------

  labelOf =
    r:
    if r.l ? homeManager then
      "home-manager.users.${r.l.homeManager.username}.home.persistence.\"${toString r.l.persistentStoragePath}\": ${r.e.directory or r.e.file}"
    else
      "environment.persistence.\"${toString r.l.persistentStoragePath}\"${
        lib.optionalString (r.user != null) ".users.${r.user}"
      }: ${r.e.directory or r.e.file}";

  # the owner and mode tabula gives a missing parent of a file (docs/generator.md)
  defaultParent =
    r:
    let
      parent = dirOf r.value.path;
    in
    if r.user == null then
      {
        user = "root";
        group = "root";
        mode = "0755";
      }
    else if parent == "." then
      null # the home: impermanence creates it 0700 first, as tabula does
    else
      {
        user = r.user;
        group = groupOf r.user;
        mode = "0755";
      };
  parentWanted =
    r:
    let
      pd = r.e.parentDirectory;
      d = defaultParent r;
    in
    if pd == null || d == null then
      null
    else
      {
        user = if pd.user == null then d.user else pd.user;
        group = if pd.group == null then d.group else pd.group;
        mode = if pd.mode == null then d.mode else octalMode pd.mode;
      };

  refusals = concatMap (
    r:
    optional (r.e ? mode && r.e.mode != null && octalMode r.e.mode == null)
      "${labelOf r}: mode \"${r.e.mode}\" is not one tabula can reproduce exactly as `mkdir --mode` would (octal up to 0777, or clauses of [ugoa]*[=+-][rwxX]*); write it in octal, e.g. \"0750\"."
    ++ optional (r.e ? parentDirectory && r.e.parentDirectory != null && r.e.parentDirectory.mode != null && octalMode r.e.parentDirectory.mode == null)
      "${labelOf r}: parentDirectory.mode \"${r.e.parentDirectory.mode}\" is not one tabula can reproduce exactly; write it in octal."
    ++ optional (r.e ? parentDirectory && parentWanted r != null && parentWanted r != defaultParent r)
      "${labelOf r}: parentDirectory asks for ${builtins.toJSON (parentWanted r)} on the file's parent directory, but tabula's config contract has no key for the owner and mode of an entry's parents (it creates missing parents ${builtins.toJSON (defaultParent r)}). Remove parentDirectory, or create the parent yourself (e.g. systemd.tmpfiles) before the persisted file is prepared."
    ++ optional (r.e ? method && r.e.method == "symlink")
      "${labelOf r}: method = \"symlink\" is not supported: tabula bind-mounts every file, and its config contract has no key for a symlinked entry yet. Remove `method` (the bind mount keeps the data of programs that replace files by rename)."
    ++ optional (r.hide != storageHide r.storage)
      "${labelOf r}: hideMount = ${lib.boolToString r.hide}, but tabula sets x-gvfs-hide per storage and ${r.storage} gets hideMounts = ${lib.boolToString (storageHide r.storage)}; the config contract has no per-entry mount options. Set the same value for every entry of ${r.storage}."
    ++ optional (r.trash != storageTrash r.storage)
      "${labelOf r}: allowTrash = ${lib.boolToString r.trash}, but tabula sets x-gvfs-trash per storage and ${r.storage} gets allowTrash = ${lib.boolToString (storageTrash r.storage)}; the config contract has no per-entry mount options. Set the same value for every entry of ${r.storage}."
  ) records;

  homeChecks = concatMap (
    l:
    concatMap (
      name:
      let
        h = l.users.${name}.home;
      in
      optional (h != null) {
        ok = toString h == homeOf name;
        warn = l.enableWarnings;
        message = "environment.persistence.\"${toString l.persistentStoragePath}\".users.${name}.home";
      }
    ) (attrNames l.users)
  ) enabled;

in
{
  imports = [
    ./default.nix
    ./impermanence-secrets.nix
  ];

  options.environment.persistence = mkOption {
    type = types.attrsOf (types.submodule (locationModule { withUsers = true; }));
    default = { };
    description = ''
      impermanence's `environment.persistence`, provided by tabula's
      compatibility module and mapped onto `tabula.persist`.
    '';
  };

  config = lib.mkMerge [
    # as impermanence does: Home Manager users get `home.persistence`
    (lib.optionalAttrs (options ? home-manager.sharedModules) {
      home-manager.sharedModules = [
        ./impermanence-home-manager.nix
        { home._tabulaNixosModuleImported = true; }
      ];
    })
    (mkIf (enabled != [ ]) {
      tabula.enable = mkDefault true;
      tabula.persist = lib.genAttrs storagePaths storageFor;

      assertions =
        map (message: {
          assertion = false;
          inherit message;
        }) refusals
        ++ map (c: {
          assertion = c.ok;
          message = "${c.message} is not the user's home (${c.message} was removed from impermanence; the home is users.users.<name>.home). Remove it.";
        }) homeChecks;

      warnings =
        map (c: "${c.message} is deprecated (impermanence removed it: the home is users.users.<name>.home); remove it.") (
          filter (c: c.ok && c.warn) homeChecks
        );
    })
  ];
}
