# Pure helpers of the tabula NixOS module: value checks that mirror the
# config contract (docs/config.md), systemd unit-name escaping, and the
# translation of nixos-module/rollback-unit.json into a NixOS unit definition.
#
# Nothing here reads `config`; the evaluation tests (tests/eval.nix) call these
# functions directly as well as through the module.
{ lib }:

let
  inherit (lib)
    all
    concatMap
    concatStrings
    concatStringsSep
    elem
    filter
    hasPrefix
    hasSuffix
    head
    length
    mapAttrs
    optional
    removeAttrs
    splitString
    stringToCharacters
    tail
    toLower
    ;

  # Printable ASCII, space included: everything else is refused in the
  # strings that reach a unit name or the kernel's mount table.
  printable = s: builtins.match "[ -~]*" s != null;

  components = s: tail (splitString "/" s);
  goodComponent = c: c != "" && c != "." && c != "..";
in
rec {
  # --- values of the contract ------------------------------------------------

  # The contract's rules for single values, as the config crate states them
  # (config/src/names/, entries/, the Id and Mode parsers), one predicate
  # per rule, named as in config/rules.json: the table of accepted and refused
  # cases that the crate's tests and tests/eval.nix both check, so the two
  # statements cannot drift apart. Each takes any value (false for a value of
  # the wrong type). The option types of options.nix are built from these.
  #
  # Lengths are in bytes, like Nix's stringLength. Nix strings cannot hold NUL,
  # and [:cntrl:] and [:space:] are ASCII classes here, where Rust's
  # is_control and is_whitespace are Unicode's.
  rules =
    let
      str = builtins.isString;
      len = builtins.stringLength;
      hasControl = s: builtins.match "[^[:cntrl:]]*" s == null;
      hasSpace = s: builtins.match ".*[[:space:]].*" s != null;
      nameMax = 255; # one path component (NAME_MAX)
      pathMax = 4096; # PATH_MAX, with its NUL
      datasetMax = 255; # ZFS_MAX_DATASET_NAME_LEN without its NUL
      newRootSuffix = ".tabula-new"; # config/src/names/mod.rs NEW_ROOT_SUFFIX
      zfsOldRootRoom = 1 + 20 + 5; # "/", "YYYY-MM-DDTHH:MM:SSZ", ".1234"
      normalised = cs: all goodComponent cs;
      shortComponents = cs: all (c: len c <= nameMax) cs;
      pathLength = s: len s < pathMax && shortComponents (splitString "/" s);
      notReserved = s: !hasSuffix newRootSuffix s;
      zfsComponent = c: c != "." && c != ".." && builtins.match "[A-Za-z0-9_.:-]+" c != null;
      lastComponent = s: lib.last (splitString "/" s);
      # a decimal string without a sign, as a number (null when too long for one)
      decimal =
        s:
        let
          digits = head (builtins.match "0*([0-9]+)" s);
        in
        if len digits > 10 then null else builtins.fromJSON digits;
      maxId = 4294967294; # u32, without the "no id" value 2^32-1
    in
    rec {
      absolutePath =
        s:
        str s
        && !hasControl s
        && hasPrefix "/" s
        && (s == "/" || (normalised (components s) && pathLength s));
      # a path that a unit file carries as written: no surrounding whitespace,
      # no trailing backslash (config/src/entries/paths.rs check_path)
      persistedPath =
        s:
        absolutePath s
        && builtins.match "[[:space:]].*|.*[[:space:]]" s == null
        && !hasSuffix "\\" s;
      relativePath =
        s:
        str s
        && !hasControl s
        && s != ""
        && !hasPrefix "/" s
        && normalised (splitString "/" s)
        && pathLength s;
      subvolume =
        s:
        str s
        && s != ""
        && !hasControl s
        && !hasPrefix "/" s
        && normalised (splitString "/" s)
        && shortComponents (splitString "/" s)
        && notReserved s;
      # the root to roll back: room for the new root's suffix
      rootSubvolume = s: subvolume s && len (lastComponent s) + len newRootSuffix <= nameMax;
      dataset =
        s:
        str s
        && s != ""
        && len s <= datasetMax
        && !hasPrefix "/" s
        && all zfsComponent (splitString "/" s)
        && builtins.match "[A-Za-z].*" s != null
        && notReserved s;
      # a dataset inside a pool, with room for the new root's suffix
      rootDataset = s: dataset s && lib.hasInfix "/" s && len s + len newRootSuffix <= datasetMax;
      zfsOldRoots = s: dataset s && len s + zfsOldRootRoom <= datasetMax;
      snapshot = s: str s && !lib.hasInfix "/" s && !lib.hasInfix "@" s && zfsComponent s;
      # 3 or 4 octal digits, as a string
      mode = s: str s && builtins.match "[0-7]{3,4}" s != null;
      userName =
        s:
        str s
        && s != ""
        && len s <= 256
        && !hasPrefix "-" s
        && !hasControl s
        && builtins.match ".*[:/ ,].*" s == null;
      # a name, or a numeric id (number or decimal string) below 2^32-1
      userOrGroup =
        v:
        if builtins.isInt v then
          v >= 0 && v <= maxId
        else if str v && builtins.match "[0-9]+" v != null then
          decimal v != null && decimal v <= maxId
        else
          userName v;
      mountOption =
        s:
        str s
        && s != ""
        && !lib.hasInfix "," s
        && !hasSpace s
        && !hasControl s
        && !lib.hasInfix "\\" s
        && !lib.hasInfix "\"" s;
      # for the top level of a Btrfs filesystem being rolled back: writable, a
      # fresh mount, and tabula chooses the subvolume (subvolid=5) itself
      btrfsMountOptionRefused = [
        "subvol"
        "subvolid"
        "ro"
        "rescue"
        "norecovery"
        "bind"
        "rbind"
        "remount"
      ];
      btrfsMountOption = s: mountOption s && !elem (head (splitString "=" s)) btrfsMountOptionRefused;
      # "zfs" (looked up in PATH), or the absolute path of the program
      zfsCommand =
        s:
        str s
        && s != ""
        && !hasControl s
        && !hasSpace s
        && (!lib.hasInfix "/" s || (absolutePath s && s != "/"));
      unitName =
        s:
        str s
        && len s < 256
        && lib.hasInfix "." s
        && !hasPrefix "." s
        # letters, digits, : - _ . \ @ (the backslash of \x2d escapes)
        && builtins.match "[A-Za-z0-9:_.@-]+" (builtins.replaceStrings [ "\\" ] [ "" ] s) != null;
      waitSeconds = v: builtins.isInt v && v >= 0 && v <= 3600;
      keepCount = v: builtins.isInt v && v >= 0 && v <= 4294967295;
      # a pair [ inner outer ] of normalised names (paths, subvolumes,
      # datasets): whether inner is outer or lies below it, component-wise
      # (isWithin below; config/src/names/join.rs is_within)
      within =
        v:
        builtins.isList v
        && length v == 2
        && all str v
        && isWithin (builtins.elemAt v 1) (builtins.elemAt v 0);
      # the whole value of a directory entry's "zfs" / "btrfs" key, as rendered
      # (null: the key is absent)
      zfsSource = v: v == null || sourceProblems.zfs v == [ ];
      btrfsSource = v: v == null || sourceProblems.btrfs v == [ ];
    };

  # --- a directory's source as a dataset or subvolume of its own --------------

  # config/sources.json: the ZFS properties and Btrfs compression values an
  # entry's "zfs" and "btrfs" keys may hold, read by the config crate too
  # (config/src/sources.rs); config/rules.json holds the cases (rules
  # zfsSource, btrfsSource) both sides are tested against.
  sourcesTable = builtins.fromJSON (builtins.readFile ../config/sources.json);

  # Why `value` is not one ZFS can take for the property `name` (null: it is).
  zfsPropertyProblem =
    name: value:
    let
      z = sourcesTable.zfs;
      p = z.properties.${name} or null;
      len = builtins.stringLength;
      show = builtins.toJSON value;
      # a decimal string without leading zeros as a number; null when it has
      # more than `max` digits (too large for the rule anyway)
      number =
        max: s:
        let
          digits = head (builtins.match "0*([0-9]+)" s);
        in
        if len digits > max then null else builtins.fromJSON digits;
      blockSize =
        s:
        let
          m = builtins.match "([0-9]+)([KkMm]?)" s;
          n = number 9 (head m);
          unit = toLower (lib.last m);
          bytes = n * (if unit == "k" then 1024 else if unit == "m" then 1048576 else 1);
          powerOfTwo = b: b == 1 || (b > 1 && lib.mod b 2 == 0 && powerOfTwo (b / 2));
        in
        m != null
        && n != null
        && ((p.zero && n == 0) || (bytes >= p.min && bytes <= p.max && powerOfTwo bytes));
      quantity =
        s:
        let
          m = builtins.match "([0-9]{1,18})([KkMmGgTtPpEe]?)" s;
          unit = z.quantitySuffixes.${lib.toUpper (lib.last m)};
        in
        s == "none" || (m != null && number 18 (head m) <= z.quantityMaxBytes / unit);
      userProperty =
        lib.hasInfix ":" name
        && len name <= z.userProperty.nameMaxBytes
        && builtins.match "[a-z0-9_.:-]+" name != null;
      close = filter (n: lib.strings.levenshteinAtMost 2 name n) (builtins.attrNames z.properties);
    in
    if z.refused ? ${name} then
      z.refused.${name}
    else if p == null && !userProperty then
      "not a ZFS property tabula knows${
        if close != [ ] then " (did you mean ${concatStringsSep " or " close}?)" else ""
      }; user properties are written module:property in lower case (com.example:backup)"
    else if !builtins.isString value then
      "${show} is not a string; write it as `zfs set` takes it (\"8K\", \"off\")"
    else if p == null then
      if value != "" && len value <= z.userProperty.valueMaxBytes && builtins.match "[^[:cntrl:]]*" value != null then
        null
      else
        "${show}: expected a user property value, ${z.userProperty.rule}"
    else if p.kind == "enum" then
      if elem value p.values then null else "${show}: expected one of ${concatStringsSep ", " p.values}"
    else if p.kind == "blockSize" then
      if blockSize value then
        null
      else
        "${show}: expected ${z.kinds.blockSize} (from ${toString p.min} to ${toString p.max} bytes${
          lib.optionalString p.zero ", or 0"
        })"
    else if quantity value then
      null
    else
      "${show}: expected ${z.kinds.quantity}";

  # Why an entry's "zfs" / "btrfs" value (as rendered into the JSON) is
  # refused, one line per problem; [ ] when it is accepted.
  sourceProblems = {
    zfs =
      v:
      if !builtins.isAttrs v then
        [ "expected an object { dataset, properties }" ]
      else
        map (k: "unknown key ${k} (expected dataset, properties)") (
          filter (k: k != "dataset" && k != "properties") (builtins.attrNames v)
        )
        ++ optional (
          (v.dataset or null) != null && !(rules.dataset v.dataset && lib.hasInfix "/" v.dataset)
        ) "zfs.dataset = ${builtins.toJSON v.dataset}: expected a dataset inside a pool (pool/name), by the dataset name rule"
        ++ (
          if !builtins.isAttrs (v.properties or { }) then
            [ "zfs.properties: expected an attribute set of property = \"value\"" ]
          else
            lib.concatLists (
              lib.mapAttrsToList (
                n: x:
                let
                  why = zfsPropertyProblem n x;
                in
                optional (why != null) "zfs.properties.${n}: ${why}"
              ) (v.properties or { })
            )
        );
    btrfs =
      v:
      let
        c = sourcesTable.btrfs.compression;
        compression = v.compression or null;
        nodatacow = v.nodatacow or false;
      in
      if !builtins.isAttrs v then
        [ "expected an object { subvolume, nodatacow, compression }" ]
      else
        map (k: "unknown key ${k} (expected subvolume, nodatacow, compression)") (
          filter (k: !elem k [ "subvolume" "nodatacow" "compression" ]) (builtins.attrNames v)
        )
        ++ optional ((v.subvolume or true) != true) "btrfs.subvolume = ${builtins.toJSON v.subvolume}: only `true` (a subvolume); for a plain directory remove `btrfs`"
        ++ optional (!builtins.isBool nodatacow) "btrfs.nodatacow = ${builtins.toJSON nodatacow}: expected true or false"
        ++ optional (
          compression != null && !elem compression c.values
        ) "btrfs.compression = ${builtins.toJSON compression}: expected null or one of ${concatStringsSep ", " c.values}"
        ++ optional (
          nodatacow == true && compression != null
        ) "btrfs.nodatacow with btrfs.compression = ${builtins.toJSON compression}: Btrfs neither compresses nodatacow files nor sets a compression property on them; drop one of them";
  };

  # Older names, used across the module.
  isAbsolutePath = rules.absolutePath;
  isSubvolumeName = rules.subvolume;
  isDatasetName = rules.dataset;
  isSnapshotName = rules.snapshot;

  # nixpkgs' own list (nixos/lib/utils.nix pathsNeededForBoot): mount points
  # the initrd mounts, which NixOS activation reads before stage 2. The
  # modules read `utils.pathsNeededForBoot` and fall back to this copy; the
  # evaluation tests stand in for nixpkgs' utils with it.
  pathsNeededForBoot = [
    "/"
    "/nix"
    "/nix/store"
    "/var"
    "/var/log"
    "/var/lib"
    "/var/lib/nixos"
    "/etc"
    "/usr"
  ];

  # The pool of a dataset: its first component.
  poolOf = dataset: head (splitString "/" dataset);

  # --- systemd unit names -----------------------------------------------------

  # `systemd-escape --path`: the unit name stem of an absolute path. Same
  # algorithm as systemd's unit_name_path_escape(): "/" alone is "-";
  # otherwise the leading and trailing "/" are dropped, every other "/" becomes
  # "-", [A-Za-z0-9:_.] stay as they are except a leading ".", and every other
  # byte becomes "\xNN" (lower-case hex). Non-ASCII paths are refused: Nix
  # cannot index their bytes portably, and a wrong unit name here would make
  # the rollback wait for a device that never appears. Tested against the
  # host's systemd-escape in tests/run.sh.
  escapeSystemdPath =
    path:
    let
      trimmed = lib.removeSuffix "/" (lib.removePrefix "/" path);
      chars = stringToCharacters trimmed;
      hex = c: "\\x" + lib.fixedWidthString 2 "0" (toLower (lib.toHexString (lib.strings.charToInt c)));
      keep = c: builtins.match "[A-Za-z0-9:_.]" c != null;
      escapeAt =
        i: c:
        if c == "/" then
          "-"
        else if c == "." && i == 0 then
          hex c
        else if keep c then
          c
        else
          hex c;
    in
    if !isAbsolutePath path then
      throw "tabula: cannot name the systemd unit of `${path}`: not an absolute, normalised path"
    else if !printable path then
      throw "tabula: cannot name the systemd unit of `${path}`: only printable ASCII paths are supported here; use a /dev/disk/by-uuid/... or /dev/disk/by-partuuid/... path"
    else if path == "/" then
      "-"
    else
      concatStrings (lib.imap0 escapeAt chars);

  # systemd shortens unit names over 255 bytes with a hash (unit_name_hash_long);
  # a device path that long is refused here rather than misnamed.
  deviceUnit =
    device:
    let
      name = "${escapeSystemdPath device}.device";
    in
    if lib.stringLength name > 255 then
      throw "tabula: the device unit name of `${device}` would be longer than 255 bytes; use a shorter path (/dev/disk/by-uuid/...)"
    else
      name;

  # --- the one definition of the initrd unit -----------------------------------

  # rollback-unit.json, without its comment.
  rollbackUnitJSON = removeAttrs (builtins.fromJSON (builtins.readFile ./rollback-unit.json)) [
    "_comment"
  ];

  # The directives of [Unit] that NixOS models as list options of a unit
  # (systemd-unit-options.nix); every other [Unit] directive goes to
  # unitConfig unchanged.
  unitListOptions = {
    After = "after";
    Before = "before";
    Wants = "wants";
    Requires = "requires";
    Requisite = "requisite";
    BindsTo = "bindsTo";
    PartOf = "partOf";
    Conflicts = "conflicts";
  };

  # A NixOS service definition (boot.initrd.systemd.services.<name>) from a
  # unit in the JSON shape of rollback-unit.json:
  #   unit       the parsed JSON ({ Unit, Service, Install })
  #   substitute { "@name@" = value; } replaced in every [Service] string
  #   extraDeps  unit names added to After= and Wants= (never Requires=: a
  #              device that never appears must fail only its own target,
  #              which the binary does, not stop the unit; see the JSON's
  #              _comment)
  #   required   Install.WantedBy becomes requiredBy instead of wantedBy
  serviceFromUnitJSON =
    {
      unit,
      substitute ? { },
      extraDeps ? [ ],
      required ? false,
    }:
    let
      unitSection = unit.Unit or { };
      serviceSection = unit.Service or { };
      installSection = unit.Install or { };
      asList = v: if builtins.isList v then v else [ v ];
      subst =
        v:
        if builtins.isString v then
          builtins.replaceStrings (builtins.attrNames substitute) (builtins.attrValues substitute) v
        else if builtins.isList v then
          map subst v
        else
          v;
      listed = filter (k: unitListOptions ? ${k}) (builtins.attrNames unitSection);
      unknownInstall = filter (k: k != "WantedBy") (builtins.attrNames installSection);
      plainUnit = removeAttrs unitSection (
        listed
        ++ [
          "Description"
          "Documentation"
        ]
      );
      fromLists = builtins.listToAttrs (
        map (k: {
          name = unitListOptions.${k};
          value = asList unitSection.${k};
        }) listed
      );
      service = mapAttrs (_: subst) serviceSection;
      unsubstituted = filter (s: builtins.match ".*@[A-Za-z]+@.*" s != null) (
        filter builtins.isString (lib.flatten (builtins.attrValues service))
      );
    in
    assert lib.assertMsg (unknownInstall == [ ])
      "tabula: rollback-unit.json: [Install] ${concatStringsSep ", " unknownInstall} is not supported; only WantedBy";
    assert lib.assertMsg (unsubstituted == [ ])
      "tabula: rollback-unit.json: placeholder left in [Service]: ${concatStringsSep " " unsubstituted}";
    fromLists
    // {
      after = (fromLists.after or [ ]) ++ extraDeps;
      wants = (fromLists.wants or [ ]) ++ extraDeps;
      unitConfig = plainUnit;
      serviceConfig = service;
    }
    // lib.optionalAttrs (unitSection ? Description) { description = unitSection.Description; }
    // lib.optionalAttrs (unitSection ? Documentation) {
      documentation = asList unitSection.Documentation;
    }
    // (
      if required then
        { requiredBy = asList (installSection.WantedBy or [ ]); }
      else
        { wantedBy = asList (installSection.WantedBy or [ ]); }
    );

  # --- persistence helpers -------------------------------------------------------

  # The type of one persisted entry, shared by tabula's options and the
  # impermanence compatibility module: a path string, or an attribute set
  # holding the path under `key` (tabula: `path`; impermanence: `directory`
  # or `file`) next to `options`.
  entryType =
    {
      key,
      pathType,
      description,
      options,
    }:
    lib.types.coercedTo lib.types.str (path: { ${key} = path; }) (
      lib.types.submodule {
        options = {
          ${key} = lib.mkOption {
            type = pathType;
            inherit description;
          };
        }
        // options;
      }
    );


  # "/a/b/c" -> [ "/a" "/a/b" ]
  parentsOf =
    path:
    let
      cs = components path;
    in
    lib.genList (i: "/" + concatStringsSep "/" (lib.take (i + 1) cs)) (length cs - 1);

  # Whether `inner` is `outer` or below it.
  isWithin = outer: inner: outer == "/" || inner == outer || hasPrefix "${outer}/" inner;

  # Values that occur more than once, each once, in first-seen order.
  duplicates =
    list:
    let
      step =
        acc: x:
        if elem x acc.seen then
          acc // { dups = acc.dups ++ optional (!elem x acc.dups) x; }
        else
          acc // { seen = acc.seen ++ [ x ]; };
    in
    (builtins.foldl' step {
      seen = [ ];
      dups = [ ];
    } list).dups;

  # Pairs [outer inner] of distinct paths where inner lies below outer.
  nestedPairs =
    paths:
    let
      unique = lib.unique paths;
    in
    concatMap (
      outer:
      map (inner: [
        outer
        inner
      ]) (filter (inner: inner != outer && isWithin outer inner) unique)
    ) unique;
}
