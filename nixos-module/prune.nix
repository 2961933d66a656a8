# Stage 2: tabula-prune.service, the second half of the rollback. Stage 1
# (the initrd) only swaps the root and archives the previous one; the old
# roots are pruned here, once the system is up, by
# `tabula-rollback --prune-only`, with the same keep policy and refusals
# (docs/rollback.md, "Two halves"). Stage 1 still prunes when its safety
# valve opens (short of space, or more than 100 old roots), so a machine
# that never gets here cannot fill its disk.
#
# Started by multi-user.target (WantedBy) but ordered after it (After), so
# the boot reaches multi-user.target without waiting for it: nothing
# depends on the unit, and it runs once per boot, right after, in the idle
# I/O class and at the lowest CPU priority. A timer would add a fixed delay
# and skip short boots; this runs at every boot that reaches multi-user.
# The same unit serves both initrd flavours: it belongs to the booted
# system. On ZFS it is ordered after the pool imports (zfs-import.target).
{
  config,
  lib,
  ...
}:

let
  cfg = config.tabula;
  targets = cfg.settings.rollback or [ ];
  prunable = lib.filter (t: (t.oldRoots or null) != null) targets;
  onZfs = lib.any (t: t.type == "zfs") prunable;
in
{
  config = lib.mkIf (cfg.enable && prunable != [ ]) {
    systemd.services.tabula-prune = {
      description = "tabula: prune the old roots by the keep policy";
      documentation = [ "https://github.com/tabula-nix/tabula#readme" ];
      wantedBy = [ "multi-user.target" ];
      after = [
        "local-fs.target"
        "multi-user.target"
      ]
      ++ lib.optional onZfs "zfs-import.target";
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${cfg.package}/bin/tabula-rollback --prune-only --config /etc/tabula/config.json";
        IOSchedulingClass = "idle";
        Nice = 19;
        # The top level it mounts under /run stays in the unit's own mount
        # namespace, and goes with it even if the unit is killed.
        PrivateMounts = true;
        # Where NixOS puts the `zfs` program (the default zfsCommand).
        Environment = "PATH=/run/current-system/sw/bin:/run/current-system/sw/sbin";
      };
    };
  };
}
