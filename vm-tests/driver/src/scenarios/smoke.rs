//! smoke: boot each flavour without tabula (plumbing check of the harness).

use crate::harness::{Ctx, Fs, Outcome, Rollback, Spec};
use crate::initrd::Flavour;
use crate::{Env, Result};

/// Boot the Btrfs image once without any rollback.
pub fn run(env: &Env, flavour: Flavour) -> Result<Outcome> {
    let ctx = Ctx::new(env, &format!("smoke-{}", flavour.name()))?;
    let img = ctx.btrfs_image("disk.img", |m| {
        crate::image::subvol(&m.p("@root"))?;
        crate::image::subvol(&m.p("@persist"))?;
        Ok(())
    })?;
    let mut spec = Spec::new(
        flavour,
        Fs::Btrfs,
        "",
        "mark hello=world; findmnt -rno TARGET,SOURCE,FSTYPE | head -20\n",
    );
    spec.rollback = Rollback::None(None);
    let b = ctx.boot("plain", &img, &spec)?;
    b.expect_script_ok()?;
    eprintln!("smoke {}: {:.1} s", flavour.name(), b.secs);
    Ok(Outcome::Pass)
}
