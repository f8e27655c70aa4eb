//! `--chown` of COPY and ADD, resolved in the stage's filesystem.

/// Why `--chown` could not be resolved in the stage's filesystem.
#[derive(Debug, thiserror::Error)]
pub enum ChownError {
    /// No such user in the stage's /etc/passwd.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    /// No such group in the stage's /etc/group.
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    /// Another failure of the lookup.
    #[error(transparent)]
    Runtime(strata_runtime::Error),
}

/// `--chown=user[:group]` in the stage's rootfs, BuildKit's rules: a name
/// takes its primary group from passwd; a bare number uses the same number
/// as gid.
pub(crate) fn resolve_chown(root: &std::path::Path, spec: &str) -> Result<(u64, u64), ChownError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if group.is_none() {
        if let Ok(n) = user.parse::<u64>() {
            return Ok((n, n));
        }
    }
    // The runtime's errors name the rootfs' host path: a COPY's message
    // names only the user or group.
    let u = strata_runtime::resolve_user(root, spec).map_err(|e| match e {
        strata_runtime::Error::NameNotFound { missing, .. } => match missing {
            strata_runtime::NameNotFound::User(user) => ChownError::UnknownUser(user),
            strata_runtime::NameNotFound::Group(group) => ChownError::UnknownGroup(group),
        },
        e => ChownError::Runtime(e),
    })?;
    Ok((u.uid as u64, u.gid as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_stage_and_errors_name_no_host_path() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "root:x:0:\napp:x:1001:\n").unwrap();
        assert_eq!(resolve_chown(root.path(), "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_chown(root.path(), "42").unwrap(), (42, 42));
        let e = resolve_chown(root.path(), "nobody").unwrap_err();
        assert!(
            matches!(&e, ChownError::UnknownUser(u) if u == "nobody"),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(!text.contains(&*root.path().to_string_lossy()), "{text}");
        assert_eq!(
            text,
            "unable to find user nobody: no matching entries in passwd file"
        );
    }
}
