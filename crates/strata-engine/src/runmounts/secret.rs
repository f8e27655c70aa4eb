//! `RUN --mount=type=secret`: the value (from `--secret id=ID,src=FILE` or
//! `env=VAR`) is written to a private file on a tmpfs outside the store
//! (`/run/strata/secrets/<random>/`, 0700 dir) and bind-mounted read-only
//! at the target (default `/run/secrets/<id>`), or exposed as an
//! environment variable with `env=NAME`. The file is removed when the step
//! ends. Nothing of the value ever reaches a layer, the history, the cache
//! key, a log or the store.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use strata_frontend::Mount;
use strata_runtime::{BindMount, MountSpec};

use super::{option, parse_id, parse_mode, PointKind, RunMountError, RunMounts};
use crate::request::SecretSource;
use crate::step_env::StepEnv;

/// Where secret files live while a step runs (tmpfs on Debian, never the
/// store).
const SECRETS_DIR: &str = "/run/strata/secrets";

/// Removes the secret's directory on drop.
struct SecretDir(PathBuf);

impl Drop for SecretDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_value(id: &str, src: &SecretSource) -> Result<Vec<u8>, RunMountError> {
    match src {
        // A regular file only (a symlink to one is fine): a FIFO or a
        // device is refused before anything reads from it, so a secret
        // can never hang the build waiting for a writer.
        SecretSource::File(p) => strata_store::safe_path::open_regular(p, true)
            .and_then(|mut f| {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut f, &mut v).map(|_| v)
            })
            .map_err(|error| RunMountError::SecretUnreadable {
                id: id.to_string(),
                path: p.clone(),
                error,
            }),
        SecretSource::Env(v) => std::env::var_os(v)
            .map(|s| s.into_encoded_bytes())
            .ok_or_else(|| RunMountError::SecretEnvUnset {
                id: id.to_string(),
                var: v.clone(),
            }),
    }
}

/// Mounts the secret `m` (a file at `target`, or an environment variable).
pub(super) fn secret_mount(
    env: &StepEnv<'_>,
    rm: &mut RunMounts,
    m: &Mount,
    target: Option<String>,
) -> Result<(), RunMountError> {
    let env_name = option(m, "env").map(str::to_string);
    let id = match (&m.id, &target) {
        (Some(i), _) => i.clone(),
        // BuildKit: the id defaults to the target's base name.
        (None, Some(t)) => t.rsplit('/').next().unwrap_or(t).to_string(),
        (None, None) => match &env_name {
            Some(e) => e.clone(),
            None => return Err(RunMountError::SecretNeedsId),
        },
    };
    let Some(src) = env.inputs.req.secrets.get(&id) else {
        if m.required {
            return Err(RunMountError::SecretMissing(id));
        }
        return Ok(());
    };
    let value = read_value(&id, src)?;
    if let Some(name) = &env_name {
        rm.env
            .push(format!("{name}={}", String::from_utf8_lossy(&value)));
        if target.is_none() {
            return Ok(());
        }
    }
    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
    let unique = strata_runtime::new_container_id();
    let dir = PathBuf::from(SECRETS_DIR).join(unique.trim_start_matches("strata-"));
    let e = |source| RunMountError::SecretIo {
        id: id.clone(),
        source,
    };
    std::fs::create_dir_all(SECRETS_DIR).map_err(e)?;
    std::fs::set_permissions(SECRETS_DIR, std::fs::Permissions::from_mode(0o700)).map_err(e)?;
    std::fs::create_dir(&dir).map_err(e)?;
    let guard = SecretDir(dir.clone());
    let file = dir.join("secret");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .map_err(e)?;
    f.write_all(&value).map_err(e)?;
    drop(f);
    let uid = parse_id(m.uid.as_deref(), "uid")?;
    let gid = parse_id(m.gid.as_deref(), "gid")?;
    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).map_err(e)?;
    let mode = parse_mode(m.mode.as_deref(), 0o400)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).map_err(e)?;
    rm.point(&target, PointKind::File)?;
    rm.specs.push(MountSpec::Bind(BindMount {
        source: file,
        destination: target,
        readonly: true,
    }));
    rm._keep.push(Box::new(guard));
    Ok(())
}
