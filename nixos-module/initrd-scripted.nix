# Scripted stage 1 (boot.initrd.systemd.enable = false), deprecated by
# nixpkgs 26.05 (systemd stage 1 is the default there) and to be removed in
# 26.11. The definitions below exist only while nixpkgs still declares the
# scripted initrd's options: a definition of an option that does not exist
# fails the evaluation even under `mkIf false`, so they are guarded by the
# options' existence, not by a condition on their value.
#
# The static binary is
# copied into extra-utils, the config file into the initrd, and the rollback
# runs from postResumeCommands, after nixpkgs' own commands there:
#
#   postDeviceCommands   devices exist                 (too early: a hibernated
#                                                       system may still resume)
#   -- resume attempt --                              (stage-1-init.sh)
#   postResumeCommands   nixpkgs' ZFS pool import      (zfs.nix, default priority)
#                        tabula-rollback               (this module, lib.mkAfter)
#   -- mount fileSystems needed for boot --
#
# A root is never touched before the kernel had its chance to resume from
# hibernation, and a ZFS pool is imported before its dataset is rolled back.
#
# Persisted paths NixOS needs before stage 2 (nixpkgs' pathsNeededForBoot:
# /var/log, /var/lib/nixos, ...) and /etc/machine-id (PID 1 reads it first)
# are bind-mounted from postMountCommands, once the storages are mounted
# under /mnt-root, as impermanence does for its directories there; its files
# are mounted by its activation script, also before PID 1. A missing copy
# is created as the prepare step would (the entry's mode and owner, root or
# numeric: no user database yet; the machine id holding "uninitialized").
# In stage 2 the generator's units find these mounted, and the prepare step
# leaves them alone. A failure there is printed and the boot goes on: the
# stage-2 unit mounts the path later, as without this.
{
  config,
  options,
  lib,
  utils,
  ...
}:

let
  cfg = config.tabula;
  scripted = !config.boot.initrd.systemd.enable;
  wanted = cfg.enable && scripted && cfg.rollback.targets != [ ];

  # The scripted initrd's options this file defines.
  scriptedOptions = [
    "extraUtilsCommands"
    "extraUtilsCommandsTest"
    "extraFiles"
    "postResumeCommands"
  ];
  haveScripted = lib.all (o: options.boot.initrd ? ${o}) scriptedOptions;
  haveMountHook = options.boot.initrd ? postMountCommands;

  # --- persisted paths mounted by stage 1 -------------------------------------

  pathsNeededForBoot = utils.pathsNeededForBoot or tabulaLib.pathsNeededForBoot;
  tabulaLib = import ./lib.nix { inherit lib; };
  # what stage 1 mounts: system entries only (no home is needed for boot),
  # outer before inner (sorted by path)
  stage1Mounts = lib.sort (a: b: a.path < b.path) (
    lib.concatMap (
      s:
      map (e: {
        inherit (e) path;
        inherit (s) storage;
        kind = "directory";
        inherit (e) user group mode;
      }) (lib.filter (e: lib.elem e.path pathsNeededForBoot) s.directories)
      ++ map (e: {
        inherit (e) path;
        inherit (s) storage;
        kind = "file";
        inherit (e) user group mode;
      }) (lib.filter (e: e.path == "/etc/machine-id") s.files)
    ) (lib.filter (s: s.enable) (lib.attrValues cfg.persist))
  );
  mountsEarly = cfg.enable && scripted && stage1Mounts != [ ];
  # stage 1 has no user database: root or numeric ids only
  numericId = v: if v == null || v == "root" then 0 else if builtins.isInt v then v else null;
  badOwners = lib.filter (m: numericId m.user == null || numericId m.group == null) stage1Mounts;
  q = lib.escapeShellArg;
  mountCommands = lib.concatMapStrings (
    m:
    let
      src = "/mnt-root${m.storage}${m.path}";
      dst = "/mnt-root${m.path}";
      mode = if m.mode != null then m.mode else if m.kind == "file" then "0644" else "0755";
      owner = "${toString (numericId m.user)}:${toString (numericId m.group)}";
      create =
        if m.kind == "directory" then
          "mkdir -p ${q (dirOf src)} && mkdir -m ${mode} ${q src} && chown ${owner} ${q src}"
        else
          "mkdir -p ${q (dirOf src)} && echo uninitialized > ${q src} && chmod ${mode} ${q src} && chown ${owner} ${q src}";
      place = if m.kind == "directory" then "mkdir -p ${q dst}" else "mkdir -p ${q (dirOf dst)} && { [ -e ${q dst} ] || touch ${q dst}; }";
    in
    ''
      # tabula: ${m.path} from ${m.storage} (${if m.kind == "file" then "PID 1 reads it" else "NixOS needs it before stage 2"})
      if [ -L ${q src} ] || [ -L ${q dst} ]; then
        echo "tabula: ${m.path}: a symbolic link where its copy or mount point should be; not mounted in stage 1 (stage 2's prepare step says more)"
      elif { [ -e ${q src} ] || { ${create}; }; } && ${place} && mount -o bind ${q src} ${q dst}; then
        :
      else
        echo "tabula: ${m.path}: could not be bind-mounted from ${m.storage} in stage 1; stage 2 mounts it, after NixOS activation has used the erased root's copy"
      fi
    ''
  ) stage1Mounts;

  run = "tabula-rollback --config /etc/tabula/config.json";
  # "block": stage 1's `fail` prompts on the console (shell, reboot, or any
  # other key to go on), and with boot.panic_on_fail it panics instead. Any
  # other key runs the rollback again, so the boot never goes on with a root
  # that was not rolled back; a repair from the shell followed by a key
  # press resumes the boot.
  rollbackCommands =
    if cfg.rollback.onFailure == "block" then
      ''
        # tabula: roll back the root filesystem (after resume, after the pool import)
        until ${run}; do
          echo "tabula: the rollback failed and tabula.rollback.onFailure = \"block\": the boot stops here until it succeeds."
          fail
          echo "tabula: running the rollback again."
        done
      ''
    else
      ''
        # tabula: roll back the root filesystem (after resume, after the pool import)
        if ! ${run}; then
          echo "tabula: the rollback failed; booting the root as it is (tabula.rollback.onFailure = \"continue\")."
        fi
      '';
in
{
  options.tabula.scriptedStage1Mounts = lib.mkOption {
    type = lib.types.listOf lib.types.attrs;
    internal = true;
    readOnly = true;
    description = "The persisted paths the scripted initrd bind-mounts from stage 1 (empty with the systemd initrd, which mounts `inInitrd` entries instead).";
  };

  config = lib.mkMerge [
    {
      tabula.scriptedStage1Mounts = if mountsEarly && haveMountHook then stage1Mounts else [ ];
      assertions = [
        {
          assertion = !(wanted && !haveScripted);
          message = "tabula: this nixpkgs has no scripted initrd (boot.initrd.postResumeCommands and the rest are gone); set boot.initrd.systemd.enable = true.";
        }
        {
          assertion = !(mountsEarly && haveMountHook) || badOwners == [ ];
          message = "tabula.persist: ${
            lib.concatMapStringsSep ", " (m: m.path) badOwners
          } ${
            if lib.length badOwners == 1 then "is" else "are"
          } mounted by the scripted initrd, which has no user database: give ${
            if lib.length badOwners == 1 then "it" else "them"
          } user and group root or numeric ids.";
        }
      ];
    }
    (lib.optionalAttrs haveMountHook {
      boot.initrd.postMountCommands = lib.mkIf mountsEarly (lib.mkAfter mountCommands);
    })
    (lib.optionalAttrs haveScripted {
      boot.initrd = lib.mkIf wanted {
        extraUtilsCommands = ''
          copy_bin_and_libs ${cfg.package}/bin/tabula-rollback
        '';
        # The copy must still run after extra-utils' patchelf/strip/nuke-refs: an
        # unknown flag is a usage error, exit status 2, before any file is read.
        extraUtilsCommandsTest = ''
          rc=0; $out/bin/tabula-rollback --tabula-selftest >/dev/null 2>&1 || rc=$?
          if [ "$rc" != 2 ]; then
            echo "tabula-rollback does not run from extra-utils (exit status $rc, expected 2)" >&2
            exit 1
          fi
        '';

        extraFiles."/etc/tabula/config.json".source = cfg.configFile;

        postResumeCommands = lib.mkAfter rollbackCommands;
      };
    })
  ];
}
