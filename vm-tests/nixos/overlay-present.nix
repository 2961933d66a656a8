# overlay-present: seed 004's SSD overlay, SSD present: the overlay is mounted
# before the units that use it, and writes land on the SSD. The machine is
# common.nix's overlayStore; mirrors the QEMU harness scenario of the same name.
{ self }:
(import ./common.nix { inherit self; }).overlayStore "present" ''
  machine.succeed(
      "mkfs.btrfs -q -f -L ssd /dev/vdb",
      "mkdir -p /mnt && mount /dev/vdb /mnt && mkdir /mnt/upper /mnt/work && umount /mnt",
  )
  boot_specialisation(machine)

  with subtest("the overlay is mounted, with the SSD as upper layer"):
      assert mounted(machine, "/opt/store", "FSTYPE") == "overlay"
      options = mounted(machine, "/opt/store", "OPTIONS").split(",")
      assert "upperdir=/mnt/ssd/upper" in options, f"upper layer not on the SSD: {options}"

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
''
