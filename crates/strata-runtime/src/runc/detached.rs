//! Containers that outlive the call: the bundle written for `runc run
//! --detach`, and `exec`, `signal`, `remove` on a running one.

use super::*;

impl Runc {
    /// Writes the bundle dir `<bundle_root>/<id>` (config.json and the
    /// injected files) for `spec`; removed again when this fails.
    pub(super) fn write_bundle(
        &self,
        spec: &ContainerSpec,
        rootfs: &Path,
    ) -> Result<PathBuf, Error> {
        let rootfs = rootfs.to_path_buf();
        mkdir_private(&self.state_root)?;
        mkdir_private(&self.bundle_root)?;
        let bundle = self.bundle_root.join(&spec.id);
        std::fs::create_dir(&bundle).map_err(|e| {
            Error::io(
                format!(
                    "creating bundle {} (is container id {} already in use?)",
                    bundle.display(),
                    spec.id
                ),
                e,
            )
        })?;

        let resolv = match &spec.network {
            crate::Network::Join(n) => n.resolv_conf.as_deref(),
            _ => None,
        };
        let fail = |e: Error| {
            let _ = std::fs::remove_dir_all(&bundle);
            e
        };
        let files = InjectedFiles::write(
            &bundle,
            &spec.effective_hostname(),
            resolv,
            &spec.extra.extra_hosts,
        )
        .map_err(fail)?;
        let cgroups_path = match self.cgroup_path(&spec.id) {
            Some(p) => Some(p),
            None if is_rootless() => rootless_cgroup_path(spec).map_err(fail)?,
            None => None,
        };
        let mut oci = build_oci_spec(
            spec,
            &rootfs,
            &files,
            cgroups_path.as_deref(),
            nofile_limit(),
        )
        .map_err(fail)?;
        let me = std::process::id();
        let mut annotations: std::collections::HashMap<String, String> =
            [(OWNER_ANNOTATION.to_string(), me.to_string())].into();
        if let Some(t) = crate::netns::process_start_time(me) {
            annotations.insert(OWNER_START_ANNOTATION.to_string(), t.to_string());
        }
        oci.set_annotations(Some(annotations));
        let config = bundle.join("config.json");
        let json = serde_json::to_vec_pretty(&oci)
            .map_err(|e| Error::spec(e.to_string()))
            .map_err(fail)?;
        // Written under a temp name and renamed: a config that is there is
        // whole, so a cleanup never mistakes a half-written one for none.
        let partial = bundle.join("config.json.partial");
        if let Err(e) =
            std::fs::write(&partial, json).and_then(|()| std::fs::rename(&partial, &config))
        {
            let _ = std::fs::remove_dir_all(&bundle);
            return Err(Error::io(format!("writing {}", config.display()), e));
        }
        Ok(bundle)
    }

    /// runc's `--root` state directory.
    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    /// The cgroup path a container `id` gets (relative to each hierarchy's
    /// root), when strata sets one: under the cgroup parent, or rootless,
    /// the delegated cgroup its bundle names (see [`crate::cgroups`]).
    pub fn cgroup_path(&self, id: &str) -> Option<String> {
        match &self.cgroup_parent {
            Some(p) => Some(format!("{}/{}", p.trim_end_matches('/'), id)),
            None => {
                let config = std::fs::read(self.bundle_root.join(id).join("config.json")).ok()?;
                let v: serde_json::Value = serde_json::from_slice(&config).ok()?;
                v["linux"]["cgroupsPath"].as_str().map(String::from)
            }
        }
    }

    /// Starts `spec` detached (`runc run --detach`): the container's
    /// stdout and stderr are the given files, stdin is `/dev/null`. Returns
    /// the container process' pid. The caller should be a child subreaper
    /// (`PR_SET_CHILD_SUBREAPER`) to wait for it, and must call
    /// [`Runc::remove`] once it has exited (runc keeps its state and
    /// cgroup until then, so the cgroup's counters can still be read).
    pub fn start_detached(
        &self,
        spec: &ContainerSpec,
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> Result<u32, Error> {
        if !valid_id(&spec.id) {
            return Err(Error::InvalidSpec(format!(
                "invalid container id {:?}",
                spec.id
            )));
        }
        let rootfs = std::path::absolute(&spec.rootfs)
            .map_err(|e| Error::io(format!("resolving rootfs {}", spec.rootfs.display()), e))?;
        let bundle = self.write_bundle(spec, &rootfs)?;
        let log = bundle.join("runc.log");
        let pid_file = bundle.join("pid");
        let status = self
            .command()
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "run", "--detach", "--pid-file"])
            .arg(&pid_file)
            .arg("--bundle")
            .arg(&bundle)
            .arg(&spec.id)
            .stdin(std::process::Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .map_err(|e| Error::io(format!("starting {}", self.binary.display()), e))?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        match (status.success(), pid) {
            (true, Some(pid)) => Ok(pid),
            _ => {
                let errors = runc_errors(&log);
                self.remove(&spec.id);
                Err(Error::Runc {
                    id: spec.id.clone(),
                    message: if errors.is_empty() {
                        format!("runc exited with {status}")
                    } else {
                        errors.join("; ")
                    },
                })
            }
        }
    }

    /// Kills what is left of container `id`, deletes runc's state (and
    /// the cgroup) and the bundle dir, best effort.
    pub fn remove(&self, id: &str) {
        if self.state_root.join(id).exists() {
            self.kill_and_delete(id);
        }
        let _ = std::fs::remove_dir_all(self.bundle_root.join(id));
    }

    /// `runc kill [--all] ID SIGNAL` (a name like `TERM` or a number).
    pub fn signal(&self, id: &str, signal: &str, all: bool) -> Result<(), Error> {
        let mut cmd = self.command();
        cmd.arg("kill");
        if all {
            cmd.arg("--all");
        }
        let out = cmd
            .args([id, signal])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("running {} kill", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(Error::Runc {
                id: id.to_string(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Runs a process in the running container `id` (`runc exec`) in the
    /// foreground with our stdio; returns its exit code (`128 + N` when
    /// killed by signal N).
    pub fn exec(&self, id: &str, p: &crate::ProcessSpec) -> Result<ExitStatus, Error> {
        if p.tty && !stdio::stdin_is_terminal() {
            return Err(Error::NotATerminal);
        }
        let mut cmd = self.command();
        cmd.arg("exec");
        if p.tty {
            cmd.arg("-t");
        }
        cmd.arg("--cwd").arg(&p.cwd);
        cmd.arg("--user")
            .arg(format!("{}:{}", p.user.uid, p.user.gid));
        for g in &p.user.additional_gids {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
        for e in &p.env {
            cmd.arg("--env").arg(e);
        }
        cmd.arg(id).args(&p.args);
        cmd.stdin(if p.stdin || p.tty {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
        let status = cmd
            .status()
            .map_err(|e| Error::io(format!("running {} exec", self.binary.display()), e))?;
        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(sig)) => 128 + sig,
            (None, None) => 255,
        };
        Ok(ExitStatus::from_code(code))
    }
}
