# hibernate-resume, both initrd flavours (one machine each: `machine` with the
# systemd initrd, `scripted` with the scripted one): tabula never
# rolls back a root the kernel is about to resume. Boot 1 writes a file on
# `/`, starts a process holding a file on `/` open, and hibernates to a swap
# disk (`boot.resumeDevice`, so `resume=` is on the kernel command line);
# boot 2 resumes: the same boot id, the process with the same PID and its
# file still open, the file on `/` still there, no old root archived, tabula
# logged nothing new; boot 3, after a clean shutdown, rolls back as usual (the
# root it archives holds what was written before the hibernation and after the
# resume), and in the systemd initrd the resume unit finished before
# tabula-rollback.service started. In the scripted initrd the order is
# stage-1-init.sh's own: the resume attempt, then postResumeCommands, where
# tabula runs. Mirrors the QEMU harness scenarios hibernate-resume-scripted
# and hibernate-resume-systemd (which also run `btrfs check` from the host).
#
# As in nixpkgs' nixos/tests/hibernate.nix: the store is a disk image, not
# the host's store over 9p (the 9p transport does not come back after a
# resume), and the test driver's backdoor is restarted after the resume. The
# store image shifts the empty disks, so they are found by their size (and
# being blank) and the swap disk is named by its label.
{ self }:
let
  common = import ./common.nix { inherit self; };

  swapLabel = "tabula-swap";

  # common.nix's machine, with the store and backdoor settings above (merged
  # by hand: the module tests read `specialisation` off the node's attributes)
  machine =
    flavour: args:
    let
      node = common.node {
        inherit flavour;
        layout = "btrfs";
        # the swap disk: twice the memory (common.nix: 1536 MiB)
        disks = [ 3072 ];
        tabula = {
          swapDevices = [ { device = "/dev/disk/by-label/${swapLabel}"; } ];
          # sets resume= on the kernel command line (and the scripted
          # initrd's resume device)
          boot.resumeDevice = "/dev/disk/by-label/${swapLabel}";
        };
      } args;
    in
    node
    // {
      virtualisation = node.virtualisation // {
        useNixStoreImage = true;
        mountHostNixStore = false;
      };
      systemd.services.backdoor.conflicts = [ "sleep.target" ];
      powerManagement.resumeCommands = "systemctl --no-block restart backdoor.service";
    };
in
{
  name = "tabula-hibernate-resume";

  nodes.machine = machine "systemd";
  nodes.scripted = machine "scripted";

  testScript = common.helpers + ''
    import shlex

    MiB = 1024 * 1024


    def blank_disk_of_size(m, mib):
        """The one disk of `mib` MiB with no partition table and no filesystem
        (the root disk can have the same size: it is partitioned)."""
        found = []
        for line in m.succeed("lsblk -dnbP -o NAME,SIZE,FSTYPE,PTTYPE").splitlines():
            d = dict(kv.split("=", 1) for kv in shlex.split(line))
            if int(d["SIZE"]) == mib * MiB and not d["FSTYPE"] and not d["PTTYPE"]:
                found.append(f"/dev/{d['NAME']}")
        assert len(found) == 1, f"expected one blank disk of {mib} MiB, found {found}"
        return found[0]


    def old_roots(m):
        m.succeed("mkdir -p /mnt && mount -o subvolid=5 /dev/disk/by-label/tabula /mnt")
        names = m.succeed("ls /mnt/@old_roots").split()
        holding = m.succeed(
            "grep -lx before-hibernation /mnt/@old_roots/*/tabula-hibernate-file || true"
        ).split()
        m.succeed("umount /mnt")
        return names, holding


    def hibernate_resume(m, flavour):
        m.start()
        m.wait_for_unit("multi-user.target")
        tabula_disk = blank_disk_of_size(m, 1024)
        m.succeed(
            f"mkfs.btrfs -q -f -L tabula {tabula_disk}",
            f"mkdir -p /mnt && mount {tabula_disk} /mnt",
            "btrfs subvolume create /mnt/@root",
            "btrfs subvolume create /mnt/@persist",
            "btrfs subvolume create /mnt/@old_roots",
            "umount /mnt",
            f"mkswap -L ${swapLabel} {blank_disk_of_size(m, 3072)}",
            "udevadm settle",
        )
        boot_specialisation(m)

        with subtest(f"{flavour}: boot 1 writes on /, holds a file on / open, hibernates"):
            assert "resume=/dev/disk/by-label/${swapLabel}" in m.succeed("cat /proc/cmdline")
            m.wait_for_unit(m.succeed("systemd-escape --path --suffix=swap /dev/disk/by-label/${swapLabel}").strip())
            m.succeed(
                "echo before-hibernation > /tabula-hibernate-file",
                "systemd-run --unit=tabula-held sh -c 'exec sleep infinity 3>>/tabula-held-open'",
                "sync",
            )
            pid = m.succeed("systemctl show -P MainPID tabula-held").strip()
            assert pid != "0", "the process holding a file on / did not start"
            boot_id = m.succeed("cat /proc/sys/kernel/random/boot_id").strip()
            # the pruning unit logs under the same name: let it finish first
            m.wait_until_succeeds(
                "test \"$(systemctl show -P ExecMainExitTimestampMonotonic tabula-prune.service)\" != 0"
                " && test \"$(systemctl show -P ActiveState tabula-prune.service)\" != activating"
            )
            rolled = rollback_log(m)
            names_before, _ = old_roots(m)
            m.execute("systemctl hibernate >&2 &", check_return=False)
            m.wait_for_shutdown()

        with subtest(f"{flavour}: boot 2 resumes the hibernated system, nothing rolled back"):
            m.start()
            m.wait_for_unit("multi-user.target")
            assert m.succeed("cat /proc/sys/kernel/random/boot_id").strip() == boot_id, "boot 2 booted afresh instead of resuming"
            assert m.succeed("systemctl show -P MainPID tabula-held").strip() == pid
            assert m.succeed(f"readlink /proc/{pid}/fd/3").strip() == "/tabula-held-open"
            m.succeed("grep -qx before-hibernation /tabula-hibernate-file")
            assert rollback_log(m) == rolled, "tabula-rollback logged something after the resume"
            names, holding = old_roots(m)
            assert names == names_before, f"an old root was archived by the resumed boot: {names_before} -> {names}"
            assert holding == [], f"the hibernated root was archived: {holding}"
            m.succeed("echo after-resume > /tabula-after-resume", "sync")

        with subtest(f"{flavour}: boot 3, after a clean shutdown, rolls back as usual"):
            reboot(m)
            m.fail("test -e /tabula-hibernate-file")
            m.fail("test -e /tabula-after-resume")
            names, holding = old_roots(m)
            assert len(names) == len(names_before) + 1, f"expected one more old root: {names_before} -> {names}"
            assert len(holding) == 1, f"expected one old root holding the file of boot 1: {holding}"
            if flavour == "systemd":
                lines = journal(m, output="short-monotonic")
                resumed = [l for l in lines if "Finished" in l and "Resume from hibernation" in l]
                started = [l for l in lines if "Starting" in l and "tabula: roll back" in l]
                assert resumed and started, f"resume {resumed} / tabula {started} lines missing"
                t = lambda l: float(l.split("]", 1)[0].strip("[ "))
                assert t(resumed[0]) <= t(started[0]), f"tabula started before the resume unit finished: {resumed[0]} / {started[0]}"
        m.shutdown()


    for m in machines:
        hibernate_resume(m, "scripted" if m.name == "scripted" else "systemd")
  '';
}
