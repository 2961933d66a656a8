# Real `environment.persistence` values from public NixOS configurations
# (impermanence-corpus/*.json: the value as its author wrote it, with its
# repository, path and commit), each evaluated through the compatibility
# module in both initrd flavours (systemd stage 1, scripted) and compared,
# entry by entry, with what nix-community/impermanence does for it.
#
# impermanence's behaviour is modelled here from its sources (nixos.nix,
# submodule-options.nix, lib.nix, create-directories.bash, mount-file.bash):
#   - paths are joined with concatPaths (home or "/", then the entry);
#   - a directory's source, when missing, is created with `mkdir --mode`
#     and chown user:group; defaults root:root 0755, in `users.<name>` the
#     user, users.users.<name>.group, 0755; the home itself 0700;
#   - directories are created in the order persistent-storage parents,
#     homes, parents of entries (with the entry level's default owner and
#     mode), then the entries; the first creation wins, so an entry that is
#     also another entry's parent gets the parent's defaults;
#   - a file's source is never created: with one missing, impermanence puts
#     a symlink to it in place (method "auto", the default, and "symlink"),
#     with one there it bind-mounts it ("auto"); /etc/machine-id is written
#     "uninitialized" and bind-mounted; its parent directory is created with
#     `parentDirectory`'s owner and mode;
#   - directory bind mounts carry x-gvfs-hide / x-gvfs-trash per entry,
#     file bind mounts (mount-file.bash) neither;
#   - directories in nixpkgs' pathsNeededForBoot are mounted from the initrd
#     in both flavours, other directories in stage 2; files are mounted by
#     NixOS activation, which runs before PID 1 (in the systemd initrd, or
#     before the scripted initrd's stage 2 starts systemd): the field
#     `inInitrd` says "in place before PID 1".
# The tabula side is read from the rendered config.json with the contract's
# defaults (docs/config.md, docs/generator.md "owners and modes").
#
# Returns { results = [ { name; ok; detail; } ]; summary; }. A difference of
# a known, documented class is counted and reported; any other difference,
# or a configuration refused in one flavour only, fails.
{ lib }:

let
  inherit (lib)
    attrNames
    concatMap
    elem
    filter
    hasSuffix
    optional
    ;
  tabulaLib = import ../lib.nix { inherit lib; };
  compat = import ../impermanence-lib.nix { inherit lib; };
  pathsNeededForBoot = tabulaLib.pathsNeededForBoot;

  corpusDir = ./impermanence-corpus;
  corpus = map (f: {
    name = lib.removeSuffix ".json" f;
    doc = builtins.fromJSON (builtins.readFile (corpusDir + "/${f}"));
  }) (filter (hasSuffix ".json") (attrNames (builtins.readDir corpusDir)));

  inherit (import ./stub-pkgs.nix) package pkgs;

  flavours = {
    systemd = true;
    scripted = false;
  };

  locations = pers: lib.mapAttrsToList (name: l: l // { name = name; }) pers;
  enabledLocations = pers: filter (l: l.enable or true) (locations pers);
  storageOfLoc = l: l.persistentStoragePath or l.name;
  userNames = pers: lib.unique (concatMap (l: attrNames (l.users or { })) (enabledLocations pers));

  # The rest of the machine: every storage on a filesystem needed for boot,
  # every user of `users.<name>` a normal user (home /home/<name>, group users).
  host = pers: {
    fileSystems =
      {
        "/" = {
          device = "none";
          fsType = "tmpfs";
        };
      }
      // lib.genAttrs (lib.unique (map storageOfLoc (enabledLocations pers))) (_: {
        device = "/dev/disk/by-label/persist";
        fsType = "ext4";
        neededForBoot = true;
      });
    users.users = lib.genAttrs (userNames pers) (_: {
      isNormalUser = true;
    });
  };
  homeOf = name: "/home/${name}";
  groupOf = _: "users";

  evalCompat =
    systemd: pers:
    (lib.evalModules {
      modules = [
        ./stubs.nix
        ./stubs-scripted.nix
        ../impermanence.nix
        {
          _module.args = {
            inherit pkgs;
            utils.pathsNeededForBoot = pathsNeededForBoot;
          };
          tabula.package = package;
          boot.initrd.systemd.enable = systemd;
          environment.persistence = pers;
        }
        (host pers)
      ];
    }).config;

  # --- impermanence, modelled --------------------------------------------------

  impermanence =
    pers:
    let
      locs = enabledLocations pers;
      asDir = e: if builtins.isString e then { directory = e; } else e;
      asFile = e: if builtins.isString e then { file = e; } else e;
      # one level: system (user = null) or a user's
      level =
        l: user: lists:
        let
          home = if user == null then null else homeOf user;
          defaults = {
            user = if user == null then "root" else user;
            group = if user == null then "root" else groupOf user;
            mode = "0755";
          };
          at = p: compat.resolveDots (compat.concatPaths [ (if home == null then "/" else home) p ]);
          dirs = map (
            e0:
            let
              e = asDir e0;
            in
            {
              kind = "directory";
              path = at e.directory;
              storage = e.persistentStoragePath or (storageOfLoc l);
              user = e.user or defaults.user;
              group = e.group or defaults.group;
              mode = compat.mkdirMode (e.mode or "0755");
              hide = e.hideMount or (l.hideMounts or false);
              trash = e.allowTrash or (l.allowTrash or false);
              inherit home defaults;
            }
          ) (lists.directories or [ ]);
          files = map (
            e0:
            let
              e = asFile e0;
              pd = e.parentDirectory or { };
            in
            {
              kind = "file";
              path = at e.file;
              storage = e.persistentStoragePath or (storageOfLoc l);
              parent = {
                path = at (dirOf e.file);
                user = pd.user or defaults.user;
                group = pd.group or defaults.group;
                mode = compat.mkdirMode (pd.mode or "0755");
              };
              inherit home defaults;
            }
          ) (lists.files or [ ]);
        in
        dirs ++ files;
      raw = concatMap (
        l: level l null l ++ concatMap (u: level l u l.users.${u}) (attrNames (l.users or { }))
      ) locs;
      dirs = filter (e: e.kind == "directory") raw;
      files = filter (e: e.kind == "file") raw;
      # what creates a source directory first, in impermanence's order
      homes = lib.unique (concatMap (e: optional (e.home != null) {
          inherit (e) storage home;
          inherit (e.defaults) user group;
        }) raw);
      parentsOfEntry =
        e: map (p: { inherit (e) storage; path = p; perms = e.defaults; }) (
          filter (p: e.home == null || lib.hasPrefix "${e.home}/" p) (tabulaLib.parentsOf e.path)
        );
      firstCreation =
        storage: path: own:
        let
          home = filter (h: h.storage == storage && h.home == path) homes;
        in
        if home != [ ] then
          {
            inherit (builtins.head home) user group;
            mode = "0700";
          }
        else
          let
            asParent = filter (p: p.storage == storage && p.path == path) (
              concatMap parentsOfEntry (dirs ++ map (f: f // { path = f.parent.path; }) files)
            );
          in
          if asParent != [ ] then (builtins.head asParent).perms else own;
      dirCreation = d: firstCreation d.storage d.path { inherit (d) user group mode; };
    in
    map (
      d:
      let
        c = dirCreation d;
      in
      {
        inherit (d) kind path storage;
        inherit (c) user group mode;
        mountOptions = optional d.hide "x-gvfs-hide" ++ optional d.trash "x-gvfs-trash";
        inInitrd = elem d.path pathsNeededForBoot;
      }
    ) dirs
    ++ map (
      f:
      {
        inherit (f) kind path storage;
        parent = firstCreation f.storage f.parent.path { inherit (f.parent) user group mode; };
        mountOptions = [ ];
      }
      // (
        if f.path == "/etc/machine-id" then
          # mount-file.bash: "uninitialized" written as root (umask 0022),
          # then a bind mount, by activation: before PID 1 in both flavours
          {
            user = "root";
            group = "root";
            mode = "0644";
            created = machineIdCreated;
            inInitrd = true;
          }
        else
          # the other files too are mounted by activation, before PID 1
          {
            user = null;
            group = null;
            mode = null;
            created = linkedWhenMissing;
            inInitrd = true;
          }
      )
    ) files;

  # what happens to a missing file source (the `created` field)
  linkedWhenMissing = "never (a symlink to the source when it is missing)";
  machineIdCreated = "holding \"uninitialized\", then bind-mounted";

  # --- tabula, from the rendered contract ----------------------------------------

  # `early`: the entries the scripted initrd mounts from stage 1
  # (initrd-scripted.nix), which count as mounted from the initrd
  tabula =
    settings: early:
    concatMap (
      s:
      let
        opts = optional s.hideMounts "x-gvfs-hide" ++ s.mountOptions;
        entry =
          kind: user: home: e0:
          let
            e = if builtins.isString e0 then { path = e0; } else e0;
            path = if home == null then e.path else "${home}/${e.path}";
            parentPath = dirOf path;
            # docs/generator.md: a missing parent outside a home root:root
            # 0755, the home the user's 0700, inside a home the user's 0755;
            # a parent that is itself an entry gets that entry's; otherwise
            # the entry's parentDirectory applies (never to the home)
            parent = (if home != null && parentPath == home then lib.id else (d: d // (e.parentDirectory or { }))) (
              if home != null && parentPath == home then
                {
                  user = user;
                  group = groupOf user;
                  mode = "0700";
                }
              else if home != null && lib.hasPrefix "${home}/" parentPath then
                {
                  user = user;
                  group = groupOf user;
                  mode = "0755";
                }
              else
                {
                  user = "root";
                  group = "root";
                  mode = "0755";
                }
            );
          in
          {
            inherit kind path;
            storage = s.storage;
            user = e.user or (if user == null then "root" else user);
            group = e.group or (if user == null then "root" else groupOf user);
            mode = e.mode or (if kind == "directory" then "0755" else "0644");
            # the storage's, then the entry's own (docs/config.md)
            mountOptions = opts ++ filter (o: !elem o opts) (e.mountOptions or [ ]);
            inInitrd = e.inInitrd or false || elem "${kind} ${s.storage}${path}" early;
          }
          // lib.optionalAttrs (kind == "file") (
            {
              inherit parent;
              # docs/config.md `method`: "auto" never creates a missing
              # copy, except the machine id (always bound, created
              # "uninitialized"); "bind" and "symlink" create it empty
              created =
                if path == "/etc/machine-id" then
                  machineIdCreated
                else if (e.method or "bind") == "auto" then
                  linkedWhenMissing
                else
                  "empty, with the entry's owner and mode";
            }
            // lib.optionalAttrs (path != "/etc/machine-id" && (e.method or "bind") == "auto") {
              # nothing is created, so no owner or mode is given
              user = null;
              group = null;
              mode = null;
            }
          );
      in
      map (entry "directory" null null) s.directories
      ++ map (entry "file" null null) s.files
      ++ concatMap (
        u:
        map (entry "directory" u s.users.${u}.home) s.users.${u}.directories
        ++ map (entry "file" u s.users.${u}.home) s.users.${u}.files
      ) (attrNames s.users)
    ) settings.persist;

  # --- comparison ----------------------------------------------------------------

  keyOf = e: "${e.kind} ${e.storage}${e.path}";
  byKey = list: builtins.listToAttrs (map (e: lib.nameValuePair (keyOf e) e) list);

  # Differences tabula has on purpose or cannot avoid yet, each documented in
  # docs/nixos.md ("Migrating from impermanence"), with the field it shows in.
  knownClasses = {
    "file created" = "a missing file source with method = \"symlink\": impermanence links to it, tabula creates it empty first (as for \"bind\")";
    "file mode" = "as `file created`: the mode of a file tabula creates";
    "file user" = "as `file created`: the owner of a file tabula creates";
    "file group" = "as `file created`: the group of a file tabula creates";
    "file inInitrd" = "when a file other than /etc/machine-id is mounted: impermanence during NixOS activation, before PID 1; tabula in stage 2, before local-fs.target (unless inInitrd). Only activation scripts could tell; the keys sops-nix and agenix read there are checked by an assertion";
    "refused: nested entries" = "a path inside a persisted file, or an inInitrd entry inside one mounted in stage 2: nestings that cannot work, refused by tabula's own check (other nested entries are accepted and mounted outer first)";
  };

  fields = [
    "user"
    "group"
    "mode"
    "mountOptions"
    "inInitrd"
    "created"
    "parent"
  ];

  compare =
    flavour: c:
    let
      config = evalCompat flavours.${flavour} c.doc."environment.persistence";
      # a value the option types refuse throws; that is a refusal too
      evaluated = builtins.tryEval (
        builtins.deepSeq [
          config.assertions
          config.tabula.settings.persist
        ] true
      );
      failed =
        if !evaluated.success then
          [ "the configuration does not evaluate (an option type refuses a value)" ]
        else
          map (a: a.message) (filter (a: !a.assertion) config.assertions);
      ours = byKey (
        tabula config.tabula.settings (map (m: "${m.kind} ${m.storage}${m.path}") config.tabula.scriptedStage1Mounts)
      );
      theirs = byKey (impermanence c.doc."environment.persistence");
      keys = lib.unique (attrNames ours ++ attrNames theirs);
      diffsOf =
        k:
        if !(ours ? ${k}) then
          [
            {
              class = "missing in tabula";
              detail = k;
            }
          ]
        else if !(theirs ? ${k}) then
          [
            {
              class = "only in tabula";
              detail = k;
            }
          ]
        else
          concatMap (
            f:
            let
              a = ours.${k}.${f} or null;
              b = theirs.${k}.${f} or null;
            in
            optional (a != b) {
              class = "${ours.${k}.kind} ${f}";
              detail = "${k}: ${f} tabula ${builtins.toJSON a}, impermanence ${builtins.toJSON b}";
            }
          ) fields;
    in
    if failed != [ ] then
      map (m: {
        class =
          if lib.hasInfix "a persisted path inside another" m then
            "refused: nested entries"
          else if lib.hasInfix "parentDirectory asks for" m then
            "refused: parentDirectory"
          else
            "refused";
        detail = "${flavour}: ${m}";
      }) failed
    else
      map (d: d // { detail = "${flavour}: ${d.detail}"; }) (concatMap diffsOf keys);

  verdicts = map (
    c:
    let
      diffs = compare "systemd" c ++ compare "scripted" c;
    in
    {
      inherit (c) name;
      repository = c.doc.repository;
      inherit diffs;
      equivalent = diffs == [ ];
      unknown = filter (d: !(knownClasses ? ${d.class})) diffs;
    }
  ) corpus;

  classes = lib.unique (concatMap (v: map (d: d.class) v.diffs) verdicts);
  classCount = cl: lib.length (filter (v: lib.any (d: d.class == cl) v.diffs) verdicts);
  equivalent = lib.length (filter (v: v.equivalent) verdicts);
  # the same, counting only differences in what happens to data that
  # exists (a missing file source is handled differently, see knownClasses)
  missingFileClasses = [
    "file created"
    "file user"
    "file group"
    "file mode"
  ];
  equivalentWhere =
    keep: lib.length (filter (v: lib.all (d: !(keep d) || lib.elem d.class missingFileClasses) v.diffs) verdicts);
  # the same, not counting when files other than /etc/machine-id are mounted
  equivalentButFileTiming = lib.length (filter (v: lib.all (d: d.class == "file inInitrd") v.diffs) verdicts);
  inFlavour = f: d: lib.hasPrefix "${f}: " d.detail;
in
{
  summary = {
    configurations = lib.length corpus;
    inherit equivalent equivalentButFileTiming;
    equivalentForExistingData = {
      systemd = equivalentWhere (inFlavour "systemd");
      scripted = equivalentWhere (inFlavour "scripted");
      both = equivalentWhere (_: true);
    };
    classes = lib.genAttrs classes (cl: {
      configurations = classCount cl;
      known = knownClasses ? ${cl};
      why = knownClasses.${cl} or "not understood";
      example = (lib.findFirst (d: d.class == cl) null (concatMap (v: v.diffs) verdicts)).detail;
    });
  };
  results =
    [
      {
        name = "impermanence corpus: at least 30 real configurations";
        ok = lib.length corpus >= 30;
        detail = "only ${toString (lib.length corpus)} in tests/impermanence-corpus";
      }
    ]
    ++ map (v: {
      name = "impermanence corpus: ${v.repository} (${v.name}) behaves as under impermanence, or differs only in documented ways";
      ok = v.unknown == [ ];
      detail = lib.concatMapStringsSep "; " (d: "[${d.class}] ${d.detail}") (lib.take 4 v.unknown);
    }) verdicts;
}
