# Shared machine, scenarios and test-script helpers of the NixOS VM tests
# (pkgs.testers.runNixOSTest; run with `nix flake check` or
# `nix build .#checks.x86_64-linux.vm-<scenario>`). The same scenarios run on
# machines without Nix in the QEMU harness (vm-tests/driver); the names match.
#
# Every scenario boots the same way, the way nixpkgs' own tests boot from a
# disk they prepare (nixos/tests/zfs.nix, systemd-initrd-luks-password.nix):
#
#   1. boot the default configuration (ext4 root on /dev/vda, Nix store from
#      the host), lay out /dev/vdb like the user's disks (seed 001 for Btrfs,
#      seeds 000/003 for ZFS), and make the `tabula` specialisation, whose
#      root is that layout, the default boot entry;
#   2. boot it: tabula rolls back in stage 1 and mounts persisted paths back;
#   3. write to / and to persisted paths, reboot, and check.
#
# What scenarios share is defined here once: `node` (the machine, with each
# layout's fileSystems and rollback target), `helpers` (Python), `scenario`
# (a test from a name, a machine and a script), and the scenarios that run
# in two flavours: btrfsRotation and zfsRollback (scripted or systemd
# initrd), overlayStore (SSD present or absent). Each scenario file calls
# one of them.
{ self }:

let
  # What a layout brings: its fileSystems, and the rollback target that erases
  # its root (`null`: nothing is rolled back).
  layouts = {
    # seed 001: flat Btrfs layout, @root rotated into @old_roots
    btrfs = rec {
      device = "/dev/disk/by-label/tabula";
      module =
        { lib, ... }:
        let
          subvol = name: {
            inherit device;
            fsType = "btrfs";
            options = [
              "subvol=${name}"
              "compress=zstd"
              "noatime"
            ];
          };
        in
        {
          virtualisation.fileSystems."/" = lib.mkForce (subvol "@root");
          virtualisation.fileSystems."/persist" = subvol "@persist" // {
            neededForBoot = true;
          };
        };
      target = {
        type = "btrfs";
        inherit device;
        subvolume = "@root";
        oldRoots = "@old_roots";
      };
    };

    # seeds 000 and 003: rpool/local is erased, rpool/safe is kept
    zfs = {
      module =
        { lib, ... }:
        {
          virtualisation.fileSystems."/" = lib.mkForce {
            device = "rpool/local/root";
            fsType = "zfs";
          };
          virtualisation.fileSystems."/persist" = {
            device = "rpool/safe/persist";
            fsType = "zfs";
            neededForBoot = true;
          };
        };
      target = {
        type = "zfs";
        dataset = "rpool/local/root";
        snapshot = "blank";
      };
    };

    # the default ext4 root, nothing rolled back (overlay scenarios)
    none = {
      module = { };
      target = null;
    };
  };

  # The one machine of a scenario.
  #   flavour  "scripted" or "systemd" (initrd)
  #   layout   "btrfs", "zfs" or "none"
  #   target   what the scenario changes in the layout's rollback target
  #            (attributes set over it; unset ones keep the layout's values)
  #   tabula   module: the scenario's own tabula settings, in the specialisation
  #   variants name -> module: more boot entries `tabula-<name>`, each the
  #            scenario's specialisation plus that module
  #   disks    extra empty disks after /dev/vdb, in MiB
  node =
    {
      flavour,
      layout,
      target ? { },
      tabula ? { },
      variants ? { },
      disks ? [ ],
    }:
    { lib, pkgs, ... }:
    let
      inherit (layouts.${layout}) module;
      rollbackTarget = layouts.${layout}.target;
      specialisation = extra: {
        imports = [
          module
          tabula
          extra
        ];
        tabula.enable = true;
        tabula.rollback.targets = lib.optional (rollbackTarget != null) (rollbackTarget // target);
        tabula.persist = lib.mkIf (layout != "none") {
          "/persist".directories = [
            # the systemd initrd mounts it before activation reads it
            {
              path = "/var/lib/nixos";
              inInitrd = flavour == "systemd";
            }
            {
              path = "/var/lib/kept";
              user = "alice";
              group = "users";
              mode = "0750";
            }
          ];
        };
      };
    in
    assert layout != "none" || target == { };
    {
      imports = [ self.nixosModules.default ];

      virtualisation = {
        emptyDiskImages = [ 1024 ] ++ disks;
        useBootLoader = true;
        useEFIBoot = true;
        # the roots the specialisation boots hold no store of their own
        mountHostNixStore = true;
        memorySize = 1536;
      };
      boot.loader.systemd-boot.enable = true;
      boot.loader.timeout = 0;
      boot.loader.efi.canTouchEfiVariables = true;

      boot.initrd.systemd.enable = flavour == "systemd";
      boot.initrd.systemd.emergencyAccess = flavour == "systemd";
      boot.supportedFilesystems = [ "btrfs" ] ++ lib.optional (layout == "zfs") "zfs";
      networking.hostId = "7ab1a7ab";
      # /dev/disk/by-id is not populated in the test VMs (as in nixos/tests/zfs.nix)
      boot.zfs.devNodes = "/dev/disk/by-uuid";
      boot.zfs.forceImportRoot = false;

      # cryptsetup: the LUKS scenarios format their disk from this first boot
      environment.systemPackages = [
        pkgs.btrfs-progs
        pkgs.cryptsetup
      ];

      # fixed ids: persisted owners must mean the same user at every boot
      users.users.alice = {
        isNormalUser = true;
        uid = 1000;
      };

      specialisation = {
        tabula.configuration = specialisation { };
      }
      // lib.mapAttrs' (
        name: extra: lib.nameValuePair "tabula-${name}" { configuration = specialisation extra; }
      ) variants;
    };

  # Python helpers shared by every test script.
  #
  # Output is checked in Python, never with `cmd | grep -q` in the guest: the
  # driver runs commands under `set -o pipefail`, and `grep -q` (or `-m1`)
  # exiting at its first match kills the writer with SIGPIPE, so the pipeline
  # fails whether or not the line was there (`fail(...)` then passes either
  # way, `succeed(...)` fails at random).
  helpers =
    builtins.readFile ./old_root_name.py
    + ''
    import re


    def prepare_btrfs(m):
        """Seed 001's layout on /dev/vdb: @root, @persist, @old_roots."""
        m.succeed(
            "mkfs.btrfs -q -f -L tabula /dev/vdb",
            "mkdir -p /mnt && mount /dev/vdb /mnt",
            "btrfs subvolume create /mnt/@root",
            "btrfs subvolume create /mnt/@persist",
            "btrfs subvolume create /mnt/@old_roots",
            "umount /mnt",
        )


    def prepare_zfs(m, snapshot="blank", old_roots=False):
        """Seeds 000/003: rpool/local/root@blank (erased), rpool/safe/persist."""
        m.succeed(
            "zpool create -f -O mountpoint=none -O compression=lz4 rpool /dev/vdb",
            "zfs create -o mountpoint=none rpool/local",
            "zfs create -o mountpoint=legacy rpool/local/root",
            "zfs create -o mountpoint=none rpool/safe",
            "zfs create -o mountpoint=legacy rpool/safe/persist",
        )
        if old_roots:
            m.succeed("zfs create -o mountpoint=none rpool/local/old_roots")
        if snapshot:
            m.succeed(f"zfs snapshot rpool/local/root@{snapshot}")
        m.succeed("zpool export rpool")


    def boot_specialisation(m, name="tabula"):
        m.succeed(f"bootctl set-default nixos-generation-1-specialisation-{name}.conf", "sync")
        m.shutdown()
        m.start()
        m.wait_for_unit("multi-user.target")


    def reboot(m):
        m.shutdown()
        m.start()
        m.wait_for_unit("multi-user.target")


    def rollback_log(m):
        """What tabula-rollback logged this boot (via /dev/kmsg, both flavours)."""
        return m.succeed("journalctl -b -o cat -t tabula-rollback --no-pager")


    def journal(m, unit=None, output="cat"):
        """This boot's journal (of `unit`), as lines."""
        select = f" -u '{unit}'" if unit else ""
        return m.succeed(f"journalctl -b -o {output} --no-pager{select}").splitlines()


    def journal_time(m, unit, text=""):
        """Monotonic time of the first journal line of `unit` (containing `text`)."""
        lines = [l for l in journal(m, unit, "short-monotonic") if text in l]
        assert lines, f"no journal line of {unit} contains {text!r}"
        return float(lines[0].split("]", 1)[0].strip("[ "))


    def mounted(m, path, column):
        """findmnt's `column` (SOURCE, FSTYPE, OPTIONS) of the mount at `path`."""
        return m.succeed(f"findmnt -no {column} {path}").strip()


    def assert_finished_before(m, first, second):
        """`first` finished before `second` started (the systemd initrd's ordering)."""
        done = journal_time(m, first, "Mounted" if first.endswith(".mount") else "Finished")
        started = journal_time(m, second)
        assert done <= started, f"{first} finished at {done}, after {second} started at {started}"


    def write_state(m):
        """Something on the erased root, something persisted."""
        m.succeed(
            "echo erased > /etc/tabula-erased",
            "echo kept > /var/lib/kept/data",
            "chown alice:users /var/lib/kept/data",
            "sync",
        )


    def check_state(m):
        m.fail("test -e /etc/tabula-erased")
        m.succeed(
            "test \"$(cat /var/lib/kept/data)\" = kept",
            "test \"$(stat -c %U:%G:%a /var/lib/kept)\" = alice:users:750",
            "test \"$(stat -c %U:%G /var/lib/kept/data)\" = alice:users",
        )
        source = mounted(m, "/var/lib/kept", "SOURCE")
        assert "/var/lib/kept" in source, f"/var/lib/kept is not a bind mount of the storage: {source!r}"
  '';

  # The test of one scenario: named `tabula-<name>` like its file (and the
  # QEMU harness scenario), one machine, the helpers, then its script.
  scenario =
    {
      name,
      machine,
      script,
    }:
    {
      name = "tabula-${name}";
      nodes.machine = machine;
      testScript = helpers + script;
    };

  # Script lines that only one initrd flavour runs (whole subtests, at the
  # top level of the script).
  onlyWith = want: flavour: script: if flavour == want then script else "";

  # btrfs-rotation-<flavour>: / is erased at every boot, persisted data keeps
  # its owner and mode, and the previous root is kept under @old_roots with
  # its creation time as name.
  btrfsRotation =
    flavour:
    scenario {
      name = "btrfs-rotation-${flavour}";
      machine = node {
        inherit flavour;
        layout = "btrfs";
      };
      script = ''
        machine.start()
        machine.wait_for_unit("multi-user.target")
        prepare_btrfs(machine)
        boot_specialisation(machine)

        with subtest("the root is the fresh @root"):
            assert mounted(machine, "/", "FSTYPE") == "btrfs"
            options = mounted(machine, "/", "OPTIONS").split(",")
            assert "subvol=/@root" in options, f"/ is not @root: {options}"
            assert "@root" in rollback_log(machine), "tabula-rollback logged nothing about @root"

      ''
      + onlyWith "systemd" flavour ''
        with subtest("ran as the initrd unit built from rollback-unit.json, before the root was mounted"):
            lines = journal(machine, "tabula-rollback.service")
            assert any(l.startswith("Finished") for l in lines), f"no Finished line: {lines}"
            assert_finished_before(machine, "tabula-rollback.service", "sysroot.mount")

      ''
      + ''
        with subtest("write to the root and to a persisted directory, reboot"):
            write_state(machine)
            reboot(machine)

        with subtest("the root is clean, persisted data intact"):
            check_state(machine)

        with subtest("the previous root is under @old_roots, named by its creation time"):
            machine.succeed("mkdir -p /mnt && mount -o subvolid=5 /dev/disk/by-label/tabula /mnt")
            names = machine.succeed("ls /mnt/@old_roots").split()
            assert len(names) == 2, f"expected the two previous roots, found {names}"
            assert all(is_old_root_name(n) for n in names), f"old roots not named by time: {names}"
            machine.succeed("grep -qx erased /mnt/@old_roots/*/etc/tabula-erased")
            machine.succeed("umount /mnt")
      '';
    };

  # zfs-rollback-<flavour>: rpool/local/root goes back to @blank at every boot
  # (zfs rollback -r), after the pool import and before the root is mounted;
  # rpool/safe/persist keeps what is persisted.
  zfsRollback =
    flavour:
    scenario {
      name = "zfs-rollback-${flavour}";
      machine = node {
        inherit flavour;
        layout = "zfs";
      };
      script = ''
        machine.start()
        machine.wait_for_unit("multi-user.target")
        prepare_zfs(machine)
        boot_specialisation(machine)

        with subtest("the root is rpool/local/root"):
            assert mounted(machine, "/", "SOURCE") == "rpool/local/root"
            assert mounted(machine, "/", "FSTYPE") == "zfs"
            assert "rpool/local/root@blank" in rollback_log(machine), "tabula-rollback logged nothing about the rollback"

      ''
      + onlyWith "systemd" flavour ''
        with subtest("after the pool import, before the root is mounted"):
            assert_finished_before(machine, "zfs-import-rpool.service", "tabula-rollback.service")
            assert_finished_before(machine, "tabula-rollback.service", "sysroot.mount")

      ''
      + ''
        with subtest("write to the root and to a persisted directory, reboot"):
            write_state(machine)
            machine.succeed("zfs snapshot rpool/local/root@later")
            reboot(machine)

        with subtest("the root is back at @blank, persisted data intact"):
            check_state(machine)
            snapshots = machine.succeed("zfs list -H -o name -t snapshot rpool/local/root").split()
            assert snapshots == ["rpool/local/root@blank"], f"rollback -r keeps only @blank, found {snapshots}"
      '';
    };

  # luks-btrfs-<flavour>: seed 001's Btrfs layout inside a LUKS2 container on
  # /dev/vdb, opened in stage 1 with a key file from the initrd
  # (boot.initrd.luks.devices, as nixpkgs' systemd-initrd-luks-keyfile test
  # does; scripted: luksroot.nix before postResumeCommands; systemd:
  # systemd-cryptsetup@cryptroot.service); tabula's device is the mapped
  # /dev/mapper/cryptroot, and the rotation goes as on plain Btrfs.
  luksBtrfs =
    flavour:
    scenario {
      name = "luks-btrfs-${flavour}";
      machine = node {
        inherit flavour;
        layout = "btrfs";
        target.device = "/dev/mapper/cryptroot";
        tabula =
          { lib, ... }:
          let
            # the layout's mounts, from the mapped device tabula rolls back
            subvol = name: {
              device = "/dev/mapper/cryptroot";
              fsType = "btrfs";
              options = [
                "subvol=${name}"
                "compress=zstd"
                "noatime"
              ];
            };
          in
          {
            virtualisation.fileSystems."/" = lib.mkOverride 10 (subvol "@root");
            virtualisation.fileSystems."/persist" = lib.mkOverride 10 (
              subvol "@persist" // { neededForBoot = true; }
            );
            boot.initrd.luks.devices = lib.mkVMOverride {
              cryptroot = {
                device = "/dev/vdb";
                keyFile = "/etc/cryptroot.key";
              };
            };
            boot.initrd.secrets."/etc/cryptroot.key" = builtins.toFile "tabula-luks-key" "tabula-harness-luks-key";
          };
      };
      script = ''
        machine.start()
        machine.wait_for_unit("multi-user.target")
        machine.succeed(
            "echo -n tabula-harness-luks-key > /tmp/key",
            "cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file /tmp/key /dev/vdb",
            "cryptsetup open --key-file /tmp/key /dev/vdb cryptroot",
            "mkfs.btrfs -q -f -L tabula /dev/mapper/cryptroot",
            "mkdir -p /mnt && mount /dev/mapper/cryptroot /mnt",
            "btrfs subvolume create /mnt/@root",
            "btrfs subvolume create /mnt/@persist",
            "btrfs subvolume create /mnt/@old_roots",
            "umount /mnt",
            "cryptsetup close cryptroot",
        )
        boot_specialisation(machine)

        with subtest("the root is @root on the opened container"):
            assert mounted(machine, "/", "FSTYPE") == "btrfs"
            assert "subvol=/@root" in mounted(machine, "/", "OPTIONS").split(",")
            assert machine.succeed("lsblk -no TYPE /dev/mapper/cryptroot").split() == ["crypt"]
            assert "/dev/mapper/cryptroot" in rollback_log(machine), "tabula-rollback did not name the mapped device"
            assert machine.succeed("blkid -p -o value -s TYPE /dev/vdb").strip() == "crypto_LUKS"

      ''
      + onlyWith "systemd" flavour ''
        with subtest("opened before the rollback, the rollback before the root was mounted"):
            assert_finished_before(machine, "systemd-cryptsetup@cryptroot.service", "tabula-rollback.service")
            assert_finished_before(machine, "tabula-rollback.service", "sysroot.mount")

      ''
      + ''
        with subtest("write to the root and to a persisted directory, reboot"):
            write_state(machine)
            reboot(machine)

        with subtest("the root is clean, persisted data intact, the previous root kept"):
            check_state(machine)
            machine.succeed("mkdir -p /mnt && mount -o subvolid=5 /dev/mapper/cryptroot /mnt")
            names = machine.succeed("ls /mnt/@old_roots").split()
            assert len(names) == 2 and all(is_old_root_name(n) for n in names), names
            machine.succeed("grep -qx erased /mnt/@old_roots/*/etc/tabula-erased")
            machine.succeed("umount /mnt")
      '';
    };

  # overlay-<present|absent>: seed 004's SSD overlay, with the "SSD" (/dev/vdb)
  # present or not; the rest of the script is the scenario's. The overlay
  # sits on /opt/store rather than /nix/store: the test VM's store is already
  # an overlay of the host's store, and the unit the generator emits is the
  # same for any path.
  overlayStore =
    ssd: script:
    scenario {
      name = "overlay-${ssd}";
      machine = node {
        flavour = "systemd";
        layout = "none";
        tabula = {
          # the "SSD", /dev/vdb: may be missing at boot, so nofail and a short timeout
          virtualisation.fileSystems."/mnt/ssd" = {
            device = "/dev/disk/by-label/ssd";
            fsType = "btrfs";
            options = [
              "nofail"
              "x-systemd.device-timeout=5s"
            ];
          };
          tabula.overlays."/opt/store" = {
            upper = "/mnt/ssd/upper";
            work = "/mnt/ssd/work";
            whenMounted = "/mnt/ssd";
            before = [ "store-reader.service" ];
          };
          # stands for nix-daemon: ordered after the overlay, and wanting it
          systemd.services.store-reader = {
            wantedBy = [ "multi-user.target" ];
            serviceConfig.Type = "oneshot";
            serviceConfig.RemainAfterExit = true;
            script = "ls /opt/store > /run/store-listing";
          };
        };
      };
      script = ''
        machine.start()
        machine.wait_for_unit("multi-user.target")
        machine.succeed("mkdir -p /opt/store && echo lower > /opt/store/from-lower")

      ''
      + script;
    };
in
{
  inherit
    node
    helpers
    scenario
    btrfsRotation
    zfsRollback
    luksBtrfs
    overlayStore
    ;
}
