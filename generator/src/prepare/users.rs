//! Users and groups by name, from the passwd and group files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tabula_config::Id;

use crate::error::PrepareError;
use crate::plan::Group;

/// Users and groups, read from passwd and group files (static binaries have
/// no NSS; NixOS writes both files at activation).
#[derive(Debug, Default, Clone)]
pub struct UserDb {
    users: HashMap<String, (u32, u32)>,
    groups: HashMap<String, u32>,
    passwd: PathBuf,
    group: PathBuf,
}

impl UserDb {
    #[must_use]
    pub fn load(passwd: &Path, group: &Path) -> Self {
        let mut db = UserDb {
            passwd: passwd.to_owned(),
            group: group.to_owned(),
            ..UserDb::default()
        };
        for line in std::fs::read_to_string(passwd).unwrap_or_default().lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(uid), Some(gid)) = (f.first(), f.get(2), f.get(3)) {
                if let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) {
                    db.users.entry((*name).to_owned()).or_insert((uid, gid));
                }
            }
        }
        for line in std::fs::read_to_string(group).unwrap_or_default().lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(gid)) = (f.first(), f.get(2)) {
                if let Ok(gid) = gid.parse() {
                    db.groups.entry((*name).to_owned()).or_insert(gid);
                }
            }
        }
        db
    }

    /// uid and primary gid. A numeric uid not in the database has no known
    /// primary group; its gid is taken equal to the uid.
    fn user(&self, id: &Id) -> Result<(u32, u32), PrepareError> {
        match id {
            Id::Numeric(uid) => Ok(self
                .users
                .values()
                .find(|(u, _)| u == uid)
                .copied()
                .unwrap_or((*uid, *uid))),
            Id::Name(name) => {
                self.users
                    .get(name)
                    .copied()
                    .ok_or_else(|| PrepareError::UnknownUser {
                        name: name.clone(),
                        passwd: self.passwd.clone(),
                    })
            }
        }
    }

    pub(crate) fn uid(&self, id: &Id) -> Result<u32, PrepareError> {
        self.user(id).map(|(uid, _)| uid)
    }

    pub(crate) fn gid(&self, group: &Group) -> Result<u32, PrepareError> {
        match group {
            Group::Id(Id::Numeric(gid)) => Ok(*gid),
            Group::Id(Id::Name(name)) => {
                self.groups
                    .get(name)
                    .copied()
                    .ok_or_else(|| PrepareError::UnknownGroup {
                        name: name.clone(),
                        group: self.group.clone(),
                    })
            }
            Group::PrimaryOf(Id::Numeric(uid)) => Ok(*uid),
            Group::PrimaryOf(user) => self.user(user).map(|(_, gid)| gid),
        }
    }
}
