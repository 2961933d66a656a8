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
# why (a mode mkdir would read differently); nothing is
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
  # /etc/machine-id: PID 1 reads it before any stage-2 mount, so with the
  # systemd initrd it is mounted from there (inInitrd); with the scripted
  # initrd it cannot be, and tabula's warning says what happens instead.
  initrdFileFlag = path: lib.optionalAttrs (config.boot.initrd.systemd.enable && path == "/etc/machine-id") { inInitrd = true; };

  # a file's parentDirectory: the fields set (the contract's defaults for
  # the rest are impermanence's), the mode as mkdir makes it; and its
  # method, impermanence's: "auto" (the default: a bind mount when the
  # persisted copy exists, else a symlink to it, decided at each boot by the
  # prepare step; /etc/machine-id is always bound) or "symlink"
  parentDirOf =
    e:
    let
      pd = e.parentDirectory;
      set = lib.filterAttrs (_: v: v != null) {
        inherit (pd) user group;
        mode = octalMode pd.mode;
      };
    in
    lib.optionalAttrs (pd != null && set != { }) { parentDirectory = set; }
    // {
      method = e.method or "auto";
    };

  # Every entry of every enabled location, flattened: where it goes
  # (storage, system or a user's list) and what it says.
  listed = concatMap (
    l:
    let
      entry =
        kind: user: e: value:
        let
          hide = if e.hideMount == null then l.hideMounts else e.hideMount;
          trash = if e.allowTrash == null then l.allowTrash else e.allowTrash;
        in
        {
          inherit kind user l e;
          # impermanence applies user, group and mode only to what it
          # creates, and x-gvfs-hide / x-gvfs-trash to directory mounts only
          value =
            value
            // {
              ownership = "create";
            }
            // lib.optionalAttrs (kind == "directories" && (hide || trash)) {
              mountOptions = optional hide "x-gvfs-hide" ++ optional trash "x-gvfs-trash";
            };
          home = if user == null then null else homeIn l user;
          storage = storageOf l e;
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
        map dir u.directories ++ map (e: entry "files" name e ({ path = userRel e.file; } // parentDirOf e)) u.files;
    in
    map (e: entry "directories" null e ({ path = sysPath e.directory; } // perms e // initrdFlag (sysPath e.directory))) l.directories
    ++ map (e: entry "files" null e ({ path = sysPath e.file; } // initrdFileFlag (sysPath e.file) // parentDirOf e)) l.files
    ++ concatMap userRecords (attrNames l.users)
  ) enabled;

  # impermanence creates each missing directory once, in list order, with
  # the owner and mode of the first entry that needs it: an entry listed
  # before an outer one (`.config/fcitx5`, then `.config`) creates the outer
  # directory as its parent, with a parent's owner and mode, and the outer
  # entry's own user, group and mode then find it existing and change
  # nothing. The outer entry here asks for what impermanence creates.
  indexed = lib.imap0 (
    i: r:
    r
    // {
      inherit i;
      full = if r.user == null then r.value.path else "${r.home}/${r.value.path}";
    }
  ) listed;
  createdAsParentBy =
    r: lib.findFirst (c: c.i < r.i && c.storage == r.storage && lib.hasPrefix "${r.full}/" c.full) null indexed;
  parentOwner =
    c: if (c.e.parentDirectory or null) != null && parentWanted c != null then parentWanted c else defaultParent c;
  records = map (
    r:
    let
      c = if r.kind == "directories" then createdAsParentBy r else null;
      p = if c == null then null else parentOwner c;
    in
    if p == null then
      r
    else
      r
      // {
        value =
          removeAttrs r.value [
            "user"
            "group"
            "mode"
          ]
          // lib.filterAttrs (_: v: v != null) p;
      }
  ) indexed;

  storagePaths = lib.unique (map locStorage enabled ++ map (r: r.storage) records);

  storageFor =
    sp:
    let
      rs = filter (r: r.storage == sp) records;
      values = kind: user: map (r: r.value) (filter (r: r.kind == kind && r.user == user) rs);
    in
    {
      # per entry (directories only), as impermanence does
      hideMounts = false;
      mountOptions = [ ];
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
