# What must hold before a configuration is built, and what deserves a warning.
# Everything here is checked at evaluation time, so a mistake stops
# `nixos-rebuild` instead of a boot.
{
  config,
  lib,
  utils,
  ...
}:

let
  inherit (lib)
    any
    attrValues
    concatMap
    concatMapStringsSep
    concatStringsSep
    elem
    filter
    imap1
    length
    mkIf
    optional
    optionals
    splitString
    ;

  tabulaLib = import ./lib.nix { inherit lib; };
  inherit (tabulaLib) isWithin;

  cfg = config.tabula;
  targets = cfg.rollback.targets;
  storages = filter (s: s.enable) (attrValues cfg.persist);

  fileSystems = attrValues config.fileSystems;

  # nixpkgs' own notion (nixos/lib/utils.nix): mounted by the initrd.
  pathsNeededForBoot = utils.pathsNeededForBoot or tabulaLib.pathsNeededForBoot;
  neededForBoot = fs: fs.neededForBoot or false || elem fs.mountPoint pathsNeededForBoot;

  fsDevice =
    fs:
    if fs.device or null != null then
      fs.device
    else if fs.label or null != null then
      "/dev/disk/by-label/${fs.label}"
    else
      null;
  fsOptions = fs: concatMap (splitString ",") (fs.options or [ ]);

  # The fileSystems entries that mount a target.
  mountsOf =
    t:
    if t.type == "btrfs" then
      filter (
        fs:
        fs.fsType == "btrfs"
        && fsDevice fs == t.device
        && any (o: o == "subvol=${t.subvolume}" || o == "subvol=/${t.subvolume}") (fsOptions fs)
      ) fileSystems
    else
      filter (fs: fs.fsType == "zfs" && fsDevice fs == t.dataset) fileSystems;

  describe =
    i: t:
    if t.type == "btrfs" then
      "tabula.rollback.targets #${toString i} (btrfs ${toString t.device} subvolume ${toString t.subvolume})"
    else
      "tabula.rollback.targets #${toString i} (zfs ${toString t.dataset})";

  rootFs = lib.findFirst (fs: fs.mountPoint == "/") null fileSystems;

  targetAssertions = concatMap (
    { i, t }:
    let
      name = describe i t;
      mounts = mountsOf t;
      setForOther =
        if t.type == "btrfs" then
          filter (o: t.${o} != null) [
            "dataset"
            "snapshot"
            "zfsCommand"
          ]
        else
          filter (o: t.${o} != null && t.${o} != [ ]) [
            "device"
            "mountOptions"
            "subvolume"
            "blank"
            "waitSeconds"
          ];
      btrfsNames = filter (n: n != null) [
        t.subvolume
        t.blank
        t.oldRoots
      ];
    in
    [
      {
        assertion = setForOther == [ ];
        message = "${name}: ${concatStringsSep ", " setForOther} belong to the other kind of target; remove them (type = \"${t.type}\").";
      }
    ]
    ++ optionals (t.type == "btrfs") [
      {
        assertion = t.device != null;
        message = "${name}: `device` is required for a btrfs target: the block device of the filesystem, as fileSystems.\"/\".device names it.";
      }
      {
        assertion = t.oldRoots == null || tabulaLib.isSubvolumeName t.oldRoots;
        message = "${name}: oldRoots = \"${toString t.oldRoots}\" is not a subvolume name relative to the top level (e.g. \"@old_roots\").";
      }
      {
        assertion = length (lib.unique btrfsNames) == length btrfsNames && tabulaLib.nestedPairs (map (n: "/${n}") btrfsNames) == [ ];
        message = "${name}: subvolume, blank and oldRoots must be distinct and none inside another (got ${concatStringsSep ", " btrfsNames}).";
      }
    ]
    ++ optionals (t.type == "zfs") [
      {
        assertion = t.dataset != null;
        message = "${name}: `dataset` is required for a zfs target: the root dataset, as fileSystems.\"/\".device names it.";
      }
      {
        assertion =
          t.oldRoots == null
          || (
            tabulaLib.rules.zfsOldRoots t.oldRoots
            && tabulaLib.poolOf t.oldRoots == tabulaLib.poolOf t.dataset
            && !isWithin "/${t.dataset}" "/${t.oldRoots}"
            && !isWithin "/${t.oldRoots}" "/${t.dataset}"
          );
        message = "${name}: oldRoots = \"${toString t.oldRoots}\" must be a dataset of the same pool, neither inside nor above the dataset (e.g. \"${tabulaLib.poolOf t.dataset}/local/old_roots\").";
      }
    ]
    ++ [
      {
        assertion = mounts != [ ];
        message =
          if t.type == "btrfs" then
            "${name}: no fileSystems entry mounts it: expected one with fsType = \"btrfs\", device = \"${toString t.device}\" (the same path, not another link to the same disk) and options containing \"subvol=${toString t.subvolume}\"."
          else
            "${name}: no fileSystems entry mounts it: expected one with fsType = \"zfs\" and device = \"${toString t.dataset}\" (mountpoint=legacy).";
      }
      {
        assertion = mounts == [ ] || any neededForBoot mounts;
        message = "${name}: it is mounted at ${(lib.head mounts).mountPoint}, which is not needed for boot; the rollback runs in the initrd, so set fileSystems.\"${(lib.head mounts).mountPoint}\".neededForBoot = true.";
      }
    ]
  ) (imap1 (i: t: { inherit i t; }) targets);

  targetKeys = map (t: if t.type == "btrfs" then "btrfs ${toString t.device} ${toString t.subvolume}" else "zfs ${toString t.dataset}") targets;

  rootRolledBack = rootFs != null && any (t: elem rootFs (mountsOf t)) targets;

  # --- persistence -------------------------------------------------------------

  # Every persisted path, with where it comes from, for the checks below.
  persisted = concatMap (
    s:
    map (e: {
      inherit (e) path inInitrd;
      storage = s.storage;
      kind = "directory";
    }) s.directories
    ++ map (e: {
      inherit (e) path inInitrd;
      storage = s.storage;
      kind = "file";
    }) s.files
    ++ concatMap (
      u:
      map (e: {
        path = "${u.home}/${e.path}";
        inherit (e) inInitrd;
        storage = s.storage;
        kind = "directory";
      }) u.directories
      ++ map (e: {
        path = "${u.home}/${e.path}";
        inherit (e) inInitrd;
        storage = s.storage;
        kind = "file";
      }) u.files
    ) (attrValues s.users)
  ) storages;

  persistedPaths = map (p: p.path) persisted;
  duplicatePaths = tabulaLib.duplicates persistedPaths;
  # Nested entries are fine (the outer is mounted first, the inner on top);
  # the same two nestings as the config crate refuses cannot work: a path
  # inside a persisted file, and an inInitrd entry inside one mounted later,
  # in stage 2, which would hide it.
  nested = concatMap (
    outer:
    map (inner: {
      inherit outer inner;
      why =
        if outer.kind == "file" then
          "a file has no paths inside it"
        else
          "it has inInitrd and ${outer.path} has not: that mount comes later, in stage 2, and would hide it; give both inInitrd or neither";
    }) (filter (inner: inner.path != outer.path && isWithin outer.path inner.path && (outer.kind == "file" || (inner.inInitrd && !outer.inInitrd))) persisted)
  ) persisted;
  underStorage = filter (p: any (s: isWithin s.storage p.path) storages) persisted;
  inInitrdEntries = filter (p: p.inInitrd) persisted;
  alsoMounted = filter (p: any (fs: fs.mountPoint == p.path) fileSystems) persisted;
  # NixOS activation reads and writes these before stage 2 mounts anything
  # (nixpkgs' pathsNeededForBoot): /var/lib/nixos holds the uid/gid maps.
  # (The scripted initrd mounts these from stage 1: initrd-scripted.nix.)
  early = p: any (m: m.path == p.path && m.storage == p.storage) (config.tabula.scriptedStage1Mounts or [ ]);
  neededBeforeStage2 = filter (p: !p.inInitrd && !early p && elem p.path pathsNeededForBoot) persisted;
  # PID 1 reads /etc/machine-id before any stage-2 mount.
  machineIdLate = any (p: p.path == "/etc/machine-id" && p.kind == "file" && !p.inInitrd && !early p) persisted;

  # The fileSystems entry a path lives on: the longest mount point above it.
  mountOfPath =
    path:
    lib.foldl' (
      best: fs:
      if isWithin fs.mountPoint path && (best == null || lib.stringLength fs.mountPoint > lib.stringLength best.mountPoint) then
        fs
      else
        best
    ) null fileSystems;

  storageProblems = concatMap (
    s:
    let
      fs = mountOfPath s.storage;
    in
    optional (fs == null || fs.mountPoint == "/") "${s.storage} has no fileSystems entry of its own: it would live on the root filesystem, which is erased at boot. Add fileSystems.\"${s.storage}\" (with neededForBoot = true)."
    ++ optional (
      fs != null && fs.mountPoint != "/" && !neededForBoot fs
    ) "${s.storage} is on fileSystems.\"${fs.mountPoint}\", which is not needed for boot: set fileSystems.\"${fs.mountPoint}\".neededForBoot = true."
  ) storages;

  # --- warnings ----------------------------------------------------------------

  varLibNixosKept =
    let
      candidates = [ "/var/lib/nixos" ] ++ tabulaLib.parentsOf "/var/lib/nixos";
    in
    any (p: elem p candidates) (map (p: p.path) (filter (p: p.kind == "directory") persisted))
    || any (fs: elem fs.mountPoint candidates) fileSystems;
  usersWithoutUid = lib.attrNames (lib.filterAttrs (_: u: u.uid or null == null) (config.users.users or { }));
  groupsWithoutGid = lib.attrNames (lib.filterAttrs (_: g: g.gid or null == null) (config.users.groups or { }));

  zfsTargets = filter (t: t.type == "zfs") targets;
  snapshotTools =
    optional (config.services.zfs.autoSnapshot.enable or false) "services.zfs.autoSnapshot"
    ++ optional (config.services.sanoid.enable or false) "services.sanoid"
    ++ optional (config.services.znapzend.enable or false) "services.znapzend";
in
{
  config = mkIf cfg.enable {
    assertions =
      targetAssertions
      ++ [
        {
          assertion = lib.unique targetKeys == targetKeys;
          message = "tabula.rollback.targets: a filesystem is listed twice: ${concatStringsSep "; " (tabulaLib.duplicates targetKeys)}.";
        }
        {
          assertion = targets == [ ] || rootRolledBack;
          message = "tabula.rollback.targets: none of them is the root filesystem (fileSystems.\"/\" is ${
            if rootFs == null then "not set" else "${rootFs.fsType} ${toString (fsDevice rootFs)} ${concatStringsSep "," (fsOptions rootFs)}"
          }). Roll back what fileSystems.\"/\" mounts: for Btrfs the same device and subvol=, for ZFS the same dataset.";
        }
        {
          assertion = duplicatePaths == [ ];
          message = "tabula.persist: persisted more than once: ${concatStringsSep ", " duplicatePaths}. List each path once, in one storage.";
        }
        {
          assertion = nested == [ ];
          message = "tabula.persist: a persisted path inside another that cannot hold it: ${
            concatMapStringsSep "; " (c: "${c.inner.path} is inside ${c.outer.path} (${c.outer.kind}): ${c.why}") nested
          }.";
        }
        {
          assertion = underStorage == [ ];
          message = "tabula.persist: a persisted path lies inside a storage: ${
            concatMapStringsSep ", " (p: p.path) underStorage
          }. Entries name paths on the running system; their source is storage + path.";
        }
        {
          assertion = alsoMounted == [ ];
          message = "tabula.persist: ${
            concatMapStringsSep ", " (p: p.path) alsoMounted
          } is also a fileSystems mount point; a filesystem of its own already survives the rollback, so do not persist it as well.";
        }
        {
          assertion = storageProblems == [ ];
          message = "tabula.persist: ${concatStringsSep "\n  " storageProblems}";
        }
        {
          assertion = inInitrdEntries == [ ] || config.boot.initrd.systemd.enable;
          message = "tabula.persist: inInitrd entries (${
            concatMapStringsSep ", " (p: p.path) inInitrdEntries
          }) are mounted by the generator inside a systemd initrd: set boot.initrd.systemd.enable = true, or drop inInitrd (the scripted initrd cannot run generators).";
        }
      ];

    warnings =
      optional (storages != [ ] && !varLibNixosKept && (usersWithoutUid != [ ] || groupsWithoutGid != [ ]))
        ''
          tabula: /var/lib/nixos is neither persisted nor mounted, so users and groups
          without a fixed uid/gid get new ids at every boot, and files they own in
          persisted paths change owner. Persist "/var/lib/nixos", or fix the ids of:
            ${concatStringsSep " " (usersWithoutUid ++ map (g: "group:${g}") groupsWithoutGid)}''
      ++ optional (neededBeforeStage2 != [ ]) ''
        tabula: ${concatMapStringsSep ", " (p: p.path) neededBeforeStage2} ${
          if length neededBeforeStage2 == 1 then "is" else "are"
        } used by NixOS activation,
        which runs before stage 2 mounts persisted paths: activation would see
        the erased root's copy${
          lib.optionalString (lib.any (p: p.path == "/var/lib/nixos") neededBeforeStage2) " (for /var/lib/nixos: new uids and gids)"
        }. ${
          if config.boot.initrd.systemd.enable then
            "Set inInitrd = true on ${if length neededBeforeStage2 == 1 then "it" else "them"}: the systemd initrd mounts it before activation."
          else
            "Use the systemd initrd (boot.initrd.systemd.enable = true) and inInitrd = true, or a fileSystems entry of its own."
        }''
      ++ optional machineIdLate ''
        tabula: /etc/machine-id is persisted without inInitrd, so it is bind-mounted
        in stage 2, after systemd (PID 1) has read it. On every boot PID 1 finds no
        id on the erased root, treats the boot as the first one (first-boot units
        and presets run again) and runs with a new random id: the journal starts
        new files under /var/log/journal/<new id>, and DHCP leases and anything
        else derived from the id change. The persisted copy (created holding
        "uninitialized") is mounted over /etc/machine-id only afterwards, so
        programs that read the file later see it, not the id PID 1 and journald
        use. ${
          if config.boot.initrd.systemd.enable then
            "Set inInitrd = true on it: the systemd initrd mounts it before PID 1 reads it."
          else
            "Only the systemd initrd can mount it in time: set boot.initrd.systemd.enable = true and inInitrd = true (tabula.nixosModules.impermanence does the latter itself)."
        }''
      ++ optional (cfg.rollback.warnSnapshotTools && zfsTargets != [ ] && snapshotTools != [ ]) ''
        tabula: ${concatStringsSep ", " snapshotTools} is enabled, and tabula rolls back ${
          concatMapStringsSep ", " (t: "${t.dataset}@${t.snapshot}") zfsTargets
        } at every boot.
        Snapshots the tool takes of ${
          if length zfsTargets == 1 then "that dataset" else "those datasets"
        } after @${(lib.head zfsTargets).snapshot} are ${
          if lib.all (t: t.oldRoots == null) zfsTargets then
            "destroyed by `zfs rollback -r` at the next boot"
          else
            "destroyed with the previous root when it is pruned (or by `zfs rollback -r` where oldRoots is null)"
        }.
        Exclude the dataset from the tool (zfs set com.sun:auto-snapshot=false, or the
        tool's own setting), then set tabula.rollback.warnSnapshotTools = false.'';
  };
}
