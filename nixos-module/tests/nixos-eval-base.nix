# What every `nixos-eval-*` flake check shares: a bootable minimal system.
{
  boot.loader.systemd-boot.enable = true;
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/ESP";
    fsType = "vfat";
  };
  networking.hostId = "7ab1a7ab";
  system.stateVersion = "25.05";
  users.users.alice = {
    isNormalUser = true;
    uid = 1000;
  };
}
