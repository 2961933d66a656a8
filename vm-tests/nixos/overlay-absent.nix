# overlay-absent: seed 004's SSD overlay, SSD missing: the machine boots on
# the lower layer alone and the journal says why in one line. The machine is
# common.nix's overlayStore; mirrors the QEMU harness scenario of the same name.
{ self }:
(import ./common.nix { inherit self; }).overlayStore "absent" ''
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
      lines = journal(machine, "opt-store.mount")
      assert any("ConditionPathIsMountPoint=/mnt/ssd" in l for l in lines), f"no condition line: {lines}"
      machine.fail("systemctl is-failed --quiet opt-store.mount")
''
