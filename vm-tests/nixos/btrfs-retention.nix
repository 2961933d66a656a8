# btrfs-retention: once the system is up, tabula-prune.service prunes old
# roots by age from their names, in the filesystem's creation order, each with
# every subvolume nested inside it (leaves first), always keeping the newest
# `keep.min`; stage 1 only swaps; a renamed old root is pinned, a plain directory is left alone.
# Mirrors the QEMU harness scenario of the same name.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "btrfs-retention";

  machine = common.node {
    flavour = "scripted";
    layout = "btrfs";
    target.keep = {
      days = 30;
      min = 2;
      max = 10;
    };
  };

  script = ''
    import datetime

    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_btrfs(machine)
    machine.succeed("mount /dev/vdb /mnt")

    now = datetime.datetime.now(datetime.timezone.utc)
    # 20 old roots, one a day from 5 to 24 days ago, and 20 older ones, 40 to 59 days ago
    ages = list(range(5, 25)) + list(range(40, 60))
    names = [(now - datetime.timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ") for d in ages]
    # Oldest first, as a real machine archives them: the keep policy ranks
    # old roots by the filesystem's creation order, not by their names.
    for name in reversed(names):
        machine.succeed(
            f"btrfs subvolume create /mnt/@old_roots/{name} >/dev/null",
            # nested subvolumes three deep (docker, machines, nspawn)
            f"btrfs subvolume create /mnt/@old_roots/{name}/var >/dev/null",
            f"btrfs subvolume create /mnt/@old_roots/{name}/var/lib >/dev/null",
            f"btrfs subvolume create /mnt/@old_roots/{name}/var/lib/machines >/dev/null",
        )
    machine.succeed(
        "btrfs subvolume create /mnt/@old_roots/keep-me-forever",
        "mkdir /mnt/@old_roots/plain-directory",
        "touch -d '90 days ago' /mnt/@old_roots/plain-directory",
        # The root is younger than every old root, as on a real machine.
        "btrfs subvolume delete /mnt/@root >/dev/null",
        "btrfs subvolume create /mnt/@root >/dev/null",
        "umount /mnt",
    )
    boot_specialisation(machine)

    with subtest("stage 1 only swaps; tabula-prune.service prunes once the system is up"):
        stage1 = rollback_log(machine)
        assert "pruning left to the booted system" in stage1, f"stage 1 did not leave pruning to the booted system: {stage1}"

        def pruned(_):
            state = machine.succeed("systemctl show -p ActiveState -p Result -p ExecMainExitTimestampMonotonic tabula-prune.service")
            return "ActiveState=inactive" in state and "Result=success" in state and "ExecMainExitTimestampMonotonic=0" not in state

        retry(pruned, timeout=300)

    with subtest("pruned by age and count; pinned and plain entries left alone"):
        machine.succeed("mkdir -p /mnt", "mount -o subvolid=5 /dev/disk/by-label/tabula /mnt")
        left = set(machine.succeed("ls /mnt/@old_roots").split())
        timestamps = sorted((n for n in left if is_old_root_name(n)), reverse=True)
        assert "keep-me-forever" in left, f"a pinned old root was pruned: {sorted(left)}"
        assert "plain-directory" in left, f"a plain directory was touched: {sorted(left)}"
        # keep.max: the newest 10, i.e. the root rotated at this boot and the
        # nine newest of the 5..24-day-old ones; none older than 30 days
        assert len(timestamps) == 10, f"expected 10 old roots, found {timestamps}"
        cutoff = (now - datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert all(t >= cutoff for t in timestamps), f"an old root older than 30 days survived: {timestamps}"
        assert names[0] in left, f"the newest old root was pruned: {timestamps}"

    with subtest("no nested subvolume of a pruned root is left behind"):
        subvolumes = machine.succeed("btrfs subvolume list /mnt | awk '{print $NF}'").split()
        orphans = [s for s in subvolumes if s.startswith("@old_roots/") and s.split("/")[1] not in left]
        assert not orphans, f"nested subvolumes of pruned roots remain: {orphans}"
        machine.succeed("umount /mnt")
  '';
}
