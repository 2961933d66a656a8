# overlay-absent: seed 004's SSD overlay, SSD missing: the machine boots on the lower layer alone and the journal says why in one line.
# Mirrors the QEMU harness scenario of the same name. The overlay sits on
# /opt/store rather than /nix/store: the test VM's store is already an overlay
# of the host's store, and the unit the generator emits is the same for any path.
{ self }:
let
  common = import ./common.nix { inherit self; };
in
{
  name = "tabula-overlay-absent";

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

    # /dev/vdb is left blank: no filesystem labelled "ssd" appears at boot
    boot_specialisation(machine)

    with subtest("no overlay, the lower layer alone"):
        machine.fail("findmnt /opt/store")
        machine.fail("mountpoint -q /mnt/ssd")
        machine.succeed("test -f /opt/store/from-lower")

    with subtest("the unit listed in before still ran"):
        machine.wait_for_unit("store-reader.service")
        machine.succeed("grep -qx from-lower /run/store-listing")

    with subtest("the journal says why"):
        machine.succeed(
            "journalctl -b -o cat -u opt-store.mount | grep -F ConditionPathIsMountPoint=/mnt/ssd"
        )
        machine.fail("systemctl is-failed --quiet opt-store.mount")
  '';
}
