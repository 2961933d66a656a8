# Beyond impermanence: secrets that must exist before activation. sops-nix
# and agenix decrypt during activation (or right after it) with SSH host
# keys or age keys. On an erased root such a key is only there once its
# persisted copy is mounted; tabula mounts persisted paths in stage 2, after
# activation, unless they are on a filesystem mounted by the initrd or
# persisted with `inInitrd` (systemd stage 1). So when those modules are
# present, every key path they read must be on a filesystem needed for boot
# (other than the erased root) or persisted `inInitrd`; otherwise the build
# fails with the line to add.
{
  config,
  lib,
  options,
  utils,
  ...
}:

let
  inherit (lib)
    any
    concatMap
    filter
    optionals
    ;
  tabulaLib = import ./lib.nix { inherit lib; };
  inherit (tabulaLib) isWithin;

  pathsNeededForBoot = utils.pathsNeededForBoot or tabulaLib.pathsNeededForBoot;
  systemdInitrd = config.boot.initrd.systemd.enable;

  # [ { option; path; } ]: every key path the present modules read
  keys =
    let
      from = option: paths: map (p: { inherit option; path = toString p; }) paths;
    in
    optionals (options ? sops.age.sshKeyPaths) (from "sops.age.sshKeyPaths" config.sops.age.sshKeyPaths)
    ++ optionals (options ? sops.age.keyFile && config.sops.age.keyFile != null) (
      from "sops.age.keyFile" [ config.sops.age.keyFile ]
    )
    ++ optionals (options ? sops.gnupg.sshKeyPaths) (from "sops.gnupg.sshKeyPaths" config.sops.gnupg.sshKeyPaths)
    ++ optionals (options ? age.identityPaths) (from "age.identityPaths" config.age.identityPaths);

  # mount points the initrd mounts, except the root: it is the erased one
  bootMounts = filter (m: m != "/") (
    map (fs: fs.mountPoint) (
      filter (fs: fs.neededForBoot || lib.elem fs.mountPoint pathsNeededForBoot) (lib.attrValues config.fileSystems)
    )
  );

  # persisted entries as { storage; path; inInitrd; directory; }
  entryOf =
    kind: storage: e:
    if builtins.isString e then
      {
        inherit storage kind;
        path = e;
        inInitrd = false;
      }
    else
      {
        inherit storage kind;
        inherit (e) path;
        inInitrd = e.inInitrd or false;
      };
  persisted = concatMap (
    s: map (entryOf "directory" s.storage) s.directories ++ map (entryOf "file" s.storage) s.files
  ) config.tabula.settings.persist;
  covering = path: filter (e: if e.kind == "file" then e.path == path else isWithin e.path path) persisted;

  storages = map (s: s.storage) config.tabula.settings.persist;
  storageFor =
    path:
    let
      c = covering path;
    in
    if c != [ ] then (builtins.head c).storage else if storages != [ ] then builtins.head storages else "/persist";

  early = k: any (m: isWithin m k.path) bootMounts || any (e: e.inInitrd) (covering k.path);

  message =
    k:
    let
      storage = storageFor k.path;
      # sops.age.keyFile is one path, the others lists
      value = p: if k.option == "sops.age.keyFile" then "\"${p}\"" else "[ \"${p}\" ]";
      c = covering k.path;
      # a key inside a persisted directory: that directory from the initrd
      dir = filter (e: e.kind == "directory") c;
      entryList = if dir != [ ] then "directories" else "files";
      entryPath = if dir != [ ] then (builtins.head dir).path else k.path;
      how =
        if c == [ ] then
          "it is not persisted at all"
        else
          "it is persisted (${(builtins.head c).path} in ${storage}) only in stage 2, after activation";
    in
    ''
      ${k.option} reads ${k.path}, which is on the erased root at activation, when secrets are decrypted: ${how}.
      ${
        if systemdInitrd then
          ''
            Persist it from the initrd: add
              tabula.persist."${storage}".${entryList} = [ { path = "${entryPath}"; inInitrd = true; } ];
            (and remove ${entryPath} from environment.persistence's ${entryList}), or read the key from the storage itself:
              ${k.option} = ${value "${storage}${k.path}"};''
        else
          ''
            The scripted initrd cannot mount persisted paths before activation: read the key from the storage itself:
              ${k.option} = ${value "${storage}${k.path}"};
            (or use systemd stage 1, boot.initrd.systemd.enable = true, and persist it with inInitrd = true).''
      }
    '';
in
{
  config = lib.mkIf config.tabula.enable {
    assertions = map (k: {
      assertion = early k;
      message = message k;
    }) keys;
  };
}
