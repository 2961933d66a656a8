# nested-and-symlink: entries inside others, in one storage or two, as real
# configurations persist them (/var/lib in /persist and /var/lib/nixos in
# /state; alice's .config and .config/fcitx5, inner listed first): mounted
# outer first, each write in its own storage and back after a reboot. A file
# with method = "symlink" rewritten by rename (sed -i --follow-symlinks, as
# editors that resolve the link do) keeps its link and its new content. A
# file with method = "auto" and no copy in storage is a link to the missing
# copy on the first boot (its mount unit skipped), a write through it
# creates the copy, and the second boot bind-mounts it. Mirrors the QEMU
# harness scenario.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
common.scenario {
  name = "nested-and-symlink";

  machine = common.node {
    flavour = "systemd";
    layout = "btrfs";
    tabula =
      { lib, ... }:
      {
        virtualisation.fileSystems."/state" = {
          device = "/dev/disk/by-label/tabula";
          fsType = "btrfs";
          options = [ "subvol=@state" ];
          neededForBoot = true;
        };
        # NixOS reads /var/lib/nixos during activation: both from the
        # initrd (an inner inInitrd entry needs its outer one there too)
        tabula.persist."/persist" = {
          directories = lib.mkForce [
            {
              path = "/var/lib";
              inInitrd = true;
            }
          ];
          files = [
            {
              path = "/etc/renamed.conf";
              method = "symlink";
            }
            {
              path = "/etc/auto.conf";
              method = "auto";
            }
          ];
          users.alice.directories = [
            ".config/fcitx5"
            ".config"
          ];
        };
        tabula.persist."/state".directories = [
          {
            path = "/var/lib/nixos";
            inInitrd = true;
          }
        ];
      };
  };

  script = ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    prepare_btrfs(machine)
    machine.succeed(
        "mount /dev/vdb /mnt",
        "btrfs subvolume create /mnt/@state",
        "mkdir -p /mnt/@persist/etc",
        "echo old > /mnt/@persist/etc/renamed.conf",
        "umount /mnt",
    )
    boot_specialisation(machine)


    def over(path):
        """The mount point of the mount that holds `path`'s parent."""
        return machine.succeed(f"findmnt -no TARGET --target \"$(dirname {path})\"").strip()


    def nested_mounts():
        for p in ["/var/lib", "/var/lib/nixos", "/home/alice/.config", "/home/alice/.config/fcitx5"]:
            machine.succeed(f"mountpoint -q {p}")
        assert over("/var/lib/nixos") == "/var/lib", "/var/lib/nixos is not on top of /var/lib"
        assert over("/home/alice/.config/fcitx5") == "/home/alice/.config", ".config/fcitx5 is not on top of .config"
        assert "@state" in mounted(machine, "/var/lib/nixos", "SOURCE")
        assert "@persist" in mounted(machine, "/var/lib", "SOURCE")


    with subtest("boot 1: nested entries mounted outer first"):
        nested_mounts()

    with subtest("boot 1: the symlinked file and the auto file whose copy is missing"):
        assert machine.succeed("readlink /etc/renamed.conf").strip() == "/persist/etc/renamed.conf"
        assert machine.succeed("readlink /etc/auto.conf").strip() == "/persist/etc/auto.conf"
        machine.fail("test -e /persist/etc/auto.conf", "mountpoint -q /etc/auto.conf")
        cond = machine.succeed("systemctl show -p ConditionResult --value etc-auto.conf.mount").strip()
        assert cond == "no", f"etc-auto.conf.mount was not skipped by its condition: {cond}"

    with subtest("boot 1: writes land in their own storage"):
        machine.succeed(
            "echo lib > /var/lib/outer",
            "echo nixos > /var/lib/nixos/inner",
            "su alice -c 'echo cfg > /home/alice/.config/outer && echo fx > /home/alice/.config/fcitx5/inner'",
            "sed -i --follow-symlinks s/old/new/ /etc/renamed.conf",
            "echo first > /etc/auto.conf",
            "sync",
        )
        machine.succeed(
            "test \"$(cat /persist/var/lib/outer)\" = lib",
            "test \"$(cat /state/var/lib/nixos/inner)\" = nixos",
            "test \"$(cat /persist/home/alice/.config/outer)\" = cfg",
            "test \"$(cat /persist/home/alice/.config/fcitx5/inner)\" = fx",
            "test \"$(readlink /etc/renamed.conf)\" = /persist/etc/renamed.conf",
            "test \"$(cat /persist/etc/renamed.conf)\" = new",
            "test \"$(cat /persist/etc/auto.conf)\" = first",
        )
        # nothing under the outer copy's mount point, seen through a mount
        # of its own (/persist is a peer of the /var/lib bind mount, so the
        # inner mount propagates to it and would show there)
        machine.succeed(
            "mkdir -p /run/outer",
            "mount -o subvol=@persist /dev/disk/by-label/tabula /run/outer",
            "test -d /run/outer/var/lib/nixos",
            "test -z \"$(ls -A /run/outer/var/lib/nixos)\"",
            "umount /run/outer",
        )
        reboot(machine)

    with subtest("boot 2: everything is back, the auto file a bind mount of its copy"):
        nested_mounts()
        machine.succeed(
            "test \"$(cat /var/lib/outer)\" = lib",
            "test \"$(cat /var/lib/nixos/inner)\" = nixos",
            "test \"$(cat /home/alice/.config/outer)\" = cfg",
            "test \"$(cat /home/alice/.config/fcitx5/inner)\" = fx",
            "test \"$(readlink /etc/renamed.conf)\" = /persist/etc/renamed.conf",
            "test \"$(cat /etc/renamed.conf)\" = new",
            "test ! -L /etc/auto.conf",
            "mountpoint -q /etc/auto.conf",
            "test \"$(cat /etc/auto.conf)\" = first",
        )
  '';
}
