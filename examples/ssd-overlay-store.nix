# Seed 004: a slow eMMC root with the Nix store, and an optional SSD that
# holds a writable overlay on top of it. With the SSD present, /nix/store is
# an overlay whose upper layer is on the SSD, mounted before nix-daemon;
# without it, the machine boots on the eMMC store alone, and the journal says
# why in one line. Nothing is rolled back here.
#
# A NixOS module; import it together with tabula's (inputs.tabula.nixosModules.default).
# The SSD is prepared once: mkfs.btrfs -L NIX_SSD /dev/nas/nix_ssd, then the
# subvolumes @overlay and @build, and the directories @overlay/upper and
# @overlay/work.
#
# Unlike seed 004, upper and work share one subvolume under one mount:
# overlayfs refuses them on two mounts ("workdir and upperdir must reside
# under the same mount"), and copy-up renames from work into upper, which
# fails (EXDEV) across Btrfs subvolumes such as @upper and @work.
let
  ssd = "/mnt/nix-ssd";
in
{
  fileSystems."/" = {
    device = "/dev/disk/by-label/NIXOS_SD";
    fsType = "ext4";
  };
  fileSystems.${ssd} = {
    device = "/dev/disk/by-label/NIX_SSD";
    fsType = "btrfs";
    options = [
      "subvol=/"
      "compress=zstd"
      "noatime"
      "nofail"
      "x-systemd.device-timeout=10s"
    ];
  };

  tabula.enable = true;
  tabula.overlays."/nix/store" = {
    lower = [ "/nix/store" ];
    upper = "${ssd}/@overlay/upper";
    work = "${ssd}/@overlay/work";
    whenMounted = ssd;
    before = [
      "nix-daemon.service"
      "nix-daemon.socket"
    ];
    required = false; # nix-daemon starts on the eMMC store when the SSD is missing
  };

  nix.settings.build-dir = "${ssd}/@build";
}
