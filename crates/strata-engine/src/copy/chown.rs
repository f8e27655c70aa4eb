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
        strata_runtime::Error::UserNotFound { user, .. } => ChownError::UnknownUser(user),
        strata_runtime::Error::GroupNotFound { group, .. } => ChownError::UnknownGroup(group),
        e => ChownError::Runtime(e),
    })?;
    Ok((u.uid as u64, u.gid as u64))
}
