# What the impermanence compatibility module needs to read
# `environment.persistence` as nix-community/impermanence does: its path
# joining (lib.nix `concatPaths`) and the modes `mkdir --mode` produces from
# its `mode` strings (create-directories.bash). Written for tabula from
# impermanence's documented behaviour; the tests compare both with the host's
# real `mkdir -m` and with impermanence's semantics.
{ lib }:

let
  inherit (lib)
    concatStringsSep
    filter
    foldl'
    hasPrefix
    splitString
    stringToCharacters
    ;

  # Octal digits of a number below 8^4, as "0750".
  octal = n: "0${toString (n / 64)}${toString (lib.mod (n / 8) 8)}${toString (lib.mod n 8)}";
in
rec {
  # impermanence joins paths by splitting every part at "/", dropping the
  # empty pieces and joining with "/", with a leading "/" when the first part
  # has one: [ "/home/alice" ".config/sops/age/" ] -> "/home/alice/.config/sops/age".
  # Trailing and repeated slashes disappear; "." pieces stay (the kernel
  # resolves them).
  concatPaths =
    parts:
    let
      pieces = filter (s: s != "") (lib.concatMap (splitString "/") parts);
      lead = if hasPrefix "/" (builtins.head parts) then "/" else "";
    in
    lead + concatStringsSep "/" pieces;

  # The same path as the kernel sees it: "." components dropped, so that
  # "/home/alice/." is "/home/alice". ".." is kept (tabula refuses it).
  resolveDots =
    path:
    let
      lead = if hasPrefix "/" path then "/" else "";
      pieces = filter (s: s != "" && s != ".") (splitString "/" path);
    in
    if pieces == [ ] then (if lead == "/" then "/" else ".") else lead + concatStringsSep "/" pieces;

  # The mode GNU `mkdir --mode=MODE` gives a new directory, as an octal
  # string ("0750"), or null when MODE is outside what is modelled here
  # (then the module refuses it with an assertion rather than guess).
  #
  # Octal: 1 to 4 digits, the permission bits only (no setuid/setgid/
  # sticky). Symbolic: comma-separated clauses `[ugoa]*([=+-][rwxX]*)+`,
  # applied in order to 0777 (mkdir's starting point). With who letters a
  # clause changes only their bits; without (`+w`, `=rx`) the bits the umask
  # masks are left out, and `=` clears everything else first. The umask is
  # 0022, the one NixOS activation (where impermanence runs mkdir) has. `X`
  # means `x` for a directory. Refused: `s`, `t`, copying (`g=u`), empty.
  mkdirMode =
    mode:
    let
      umask = 18; # 0022
      bits = {
        r = 292; # 0444
        w = 146; # 0222
        x = 73; # 0111
        X = 73;
      };
      whoBits = {
        u = 448; # 0700
        g = 56; # 0070
        o = 7; # 0007
        a = 511;
      };
      digits = builtins.match "([0-7]{1,4})" mode;
      fromOctal = foldl' (n: d: n * 8 + lib.toInt d) 0 (stringToCharacters mode);
      clauseOk = c: builtins.match "[ugoa]*([=+-][rwxX]*)+" c != null;
      clauses = splitString "," mode;
      apply =
        acc: c:
        let
          who = builtins.head (builtins.match "([ugoa]*).*" c);
          affected = foldl' (n: w: lib.bitOr n whoBits.${w}) 0 (stringToCharacters who);
          actions = builtins.filter builtins.isList (builtins.split "([=+-])([rwxX]*)" c);
          step =
            m: a:
            let
              op = builtins.elemAt a 0;
              perms = foldl' (n: p: lib.bitOr n bits.${p}) 0 (stringToCharacters (builtins.elemAt a 1));
              value = lib.bitAnd perms (if affected != 0 then affected else lib.bitXor 511 umask);
            in
            if op == "=" then
              lib.bitOr (if affected != 0 then lib.bitAnd m (lib.bitXor 511 affected) else 0) value
            else if op == "+" then
              lib.bitOr m value
            else
              lib.bitAnd m (lib.bitXor 511 value);
        in
        foldl' step acc actions;
    in
    if digits != null then
      (if fromOctal > 511 then null else octal fromOctal)
    else if mode != "" && lib.all clauseOk clauses then
      octal (foldl' apply 511 clauses)
    else
      null;
}
