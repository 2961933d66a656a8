# overlay-present: seed 004's SSD overlay, SSD present: the overlay is mounted before the units that use it, and writes land on the SSD.
# Mirrors the QEMU harness scenario of the same name. The overlay sits on
# /opt/store rather than /nix/store: the test VM's store is already an overlay
# of the host's store, and the unit the generator emits is the same for any path.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
{
  name = "tabula-overlay-present";

  nodes.machine = common.node {
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

  testScript = common.helpers + ''
    machine.start()
    machine.wait_for_unit("multi-user.target")
    machine.succeed("mkdir -p /opt/store && echo lower > /opt/store/from-lower")

    machine.succeed(
        "mkfs.btrfs -q -f -L ssd /dev/vdb",
        "mkdir -p /mnt && mount /dev/vdb /mnt && mkdir /mnt/upper /mnt/work && umount /mnt",
    )
    boot_specialisation(machine)

    with subtest("the overlay is mounted, with the SSD as upper layer"):
        machine.succeed(
            "findmnt -no FSTYPE /opt/store | grep -qx overlay",
            "findmnt -no OPTIONS /opt/store | grep -q upperdir=/mnt/ssd/upper",
        )

    with subtest("the unit listed in before ran after it"):
        machine.wait_for_unit("store-reader.service")
        machine.succeed("grep -qx from-lower /run/store-listing")

    with subtest("writes go to the SSD, the lower layer is untouched"):
        machine.succeed(
            "echo upper > /opt/store/from-upper",
            "test -f /mnt/ssd/upper/from-upper",
        )
        machine.succeed("umount /opt/store")
        machine.fail("test -e /opt/store/from-upper")
  '';
}
