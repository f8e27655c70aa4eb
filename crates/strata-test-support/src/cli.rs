//! Running the `strata` binary against a temp store root, and the busybox
//! base image (`busybox:1.35`) those runs build on, created directly through
//! the store API (no registry or import needed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::files::path_str;
#[cfg(feature = "image")]
use crate::files::root_dir;

#[cfg(feature = "image")]
use strata_engine::config::ImageConfigDoc;
#[cfg(feature = "image")]
use strata_store::{LayerOptions, LayerWriter, Store};

/// The `strata` binary cargo built for this test run. An integration test
/// runs from `target/<profile>/deps/`, and cargo puts the package's
/// binaries one level up (the path `CARGO_BIN_EXE_strata` names; that
/// variable is only set when compiling the package's own tests).
pub fn strata_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join("strata");
    assert!(
        bin.exists(),
        "{} is missing: cargo builds it only for the strata package's tests",
        bin.display()
    );
    bin
}

/// One run of `strata`: the binary, its arguments, environment and stdin.
/// Every helper below is one of these; a test that needs something more
/// (a wrapper command, an environment) builds its own.
pub struct Strata {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Strata {
    /// `strata --root ROOT`.
    pub fn new(root: &Path) -> Self {
        let mut s = Self::bare();
        s.cmd.arg("--root").arg(root);
        s
    }

    /// `strata` with no `--root` (the default store, or one the arguments
    /// name).
    pub fn bare() -> Self {
        Self::wrapped(&[])
    }

    /// `WRAPPER... strata`, e.g. `timeout 60` or `prlimit --as=N --`.
    pub fn wrapped(wrapper: &[&str]) -> Self {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(strata_bin());
                c
            }
            None => Command::new(strata_bin()),
        };
        cmd.stdin(Stdio::null());
        Self { cmd, stdin: None }
    }

    /// `--root ROOT` (after [`Strata::wrapped`]).
    pub fn root(mut self, root: &Path) -> Self {
        self.cmd.arg("--root").arg(root);
        self
    }

    /// More arguments.
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.cmd.args(args);
        self
    }

    /// One environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Without this environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// `input` on stdin (closed after it); by default stdin is closed.
    pub fn stdin(mut self, input: &[u8]) -> Self {
        self.stdin = Some(input.to_vec());
        self
    }

    /// The command, to spawn and watch (stdin closed unless set with
    /// [`Strata::stdin`], which this cannot carry).
    pub fn command(self) -> Command {
        self.cmd
    }

    /// Runs to the end; stdout and stderr captured.
    pub fn output(mut self) -> Output {
        let Some(input) = self.stdin else {
            return self.cmd.output().expect("run strata");
        };
        let mut c = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run strata");
        let mut stdin = c.stdin.take().expect("a piped stdin");
        // Written from a thread: a large input must not block while the
        // child fills its output pipes.
        let w = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
        let o = c.wait_with_output().expect("wait for strata");
        w.join().expect("the stdin writer");
        o
    }

    /// Runs to the end and insists on success; returns stdout.
    pub fn ok(self) -> String {
        let shown = format!("{:?}", self.cmd);
        let o = self.output();
        assert!(
            o.status.success(),
            "{shown} failed: {}\n{}",
            stderr(&o),
            stdout(&o)
        );
        stdout(&o)
    }
}

/// `strata --root ROOT ARGS`, stdin closed.
pub fn strata(root: &Path, args: &[&str]) -> Output {
    Strata::new(root).args(args).output()
}

/// Stdout, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when the host can run these tests (root, a static busybox);
/// otherwise says so on stderr.
pub fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let ok = root && Path::new("/bin/busybox").exists();
    if !ok {
        eprintln!("SKIPPED: needs root and /bin/busybox (busybox-static)");
    }
    ok
}

/// True when pasta (the private network's user-mode stack) is installed;
/// otherwise says so on stderr.
pub fn have_pasta() -> bool {
    let ok = ["/usr/bin/pasta", "/usr/sbin/pasta", "/usr/local/bin/pasta"]
        .iter()
        .any(|p| Path::new(p).exists());
    if !ok {
        eprintln!("SKIPPED: needs pasta (apt-get install passt)");
    }
    ok
}

/// [`setup_busybox`] where pasta is installed too ([`have_pasta`]).
#[cfg(feature = "image")]
pub fn setup_with_pasta() -> Option<(tempfile::TempDir, PathBuf)> {
    if !can_run() || !have_pasta() {
        return None;
    }
    setup_busybox()
}

/// Creates `busybox:1.35` (one layer: busybox, its applets, passwd with
/// root, nobody and app(1000), /tmp 1777) in the store at `root`.
#[cfg(feature = "image")]
pub fn make_busybox(root: &Path) {
    make_busybox_with(root, None)
}

/// Like [`make_busybox`]; with `clamp`, every file time in the layer is
/// set to that instant, so two stores get the same base image ID.
#[cfg(feature = "image")]
pub fn make_busybox_with(root: &Path, clamp: Option<i64>) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for d in ["bin", "etc", "root", "tmp", "usr/bin"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    for applet in busybox_applets() {
        let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(applet));
    }
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/group"),
        "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n",
    )
    .unwrap();
    let store = Store::open(root).unwrap();
    let opts = LayerOptions {
        mtime_clamp: clamp,
        ..LayerOptions::default()
    };
    let info = LayerWriter::new(store.blobs(), opts)
        .write_dir(r, None)
        .unwrap();
    let mut cfg = ImageConfigDoc::scratch();
    if clamp.is_some() {
        cfg.created = Some("2000-01-01T00:00:00Z".into());
    }
    cfg.config.cmd = Some(vec!["sh".into()]);
    let layer = strata_engine::cache::LayerRef {
        digest: info.digest.to_string(),
        diff_id: info.diff_id.to_string(),
        size: info.size,
        uncompressed_size: info.uncompressed_size,
        media_type: info.media_type.clone(),
    };
    let id = strata_engine::images::commit_image(&store, &cfg, &[layer], None).unwrap();
    strata_engine::images::tag_image(&store, &id, &["busybox:1.35".into()]).unwrap();
}

/// The applets of /bin/busybox (`busybox --list`), but busybox itself.
pub fn busybox_applets() -> Vec<String> {
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
        .map(String::from)
        .collect()
}

/// Runs `cmd` in `image` (`strata run --rm`) and returns its stdout,
/// asserting success.
pub fn run_in(root: &Path, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    let o = strata(root, &args);
    assert!(o.status.success(), "run {cmd:?}: {}", stderr(&o));
    stdout(&o)
}

/// `strata run --rm --network none FLAGS busybox:1.35 CMD...`: a
/// throw-away container of the base image with no network (not asserted).
pub fn run_offline(root: &Path, flags: &[&str], cmd: &[&str]) -> Output {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.push("busybox:1.35");
    args.extend_from_slice(cmd);
    strata(root, &args)
}

/// Builds the context at `ctx` tagged `tag` with extra arguments; returns
/// the output (not asserted).
pub fn build_with(root: &Path, ctx: &Path, tag: &str, extra: &[&str]) -> Output {
    let ctx = path_str(ctx);
    let mut args = vec!["build", "-t", tag];
    if !extra.contains(&"--progress") && !extra.contains(&"-q") {
        args.extend(["--progress", "plain"]);
    }
    args.extend_from_slice(extra);
    args.push(&ctx);
    strata(root, &args)
}

/// Builds and asserts success.
pub fn build_ok(root: &Path, ctx: &Path, tag: &str, extra: &[&str]) -> Output {
    let o = build_with(root, ctx, tag, extra);
    assert!(o.status.success(), "build {tag}: {}", stderr(&o));
    o
}

/// strata under `timeout` (a hang fails the test instead of blocking it),
/// stdin closed.
pub fn strata_timeout(root: &Path, secs: u32, args: &[&str]) -> Output {
    let secs = secs.to_string();
    Strata::wrapped(&["timeout", &secs])
        .root(root)
        .args(args)
        .output()
}

/// Runs strata and insists on success; returns stdout.
pub fn ok(root: &Path, args: &[&str]) -> String {
    Strata::new(root).args(args).ok()
}

/// `strata --root ROOT ARGS` with `input` on stdin.
pub fn strata_stdin(root: &Path, args: &[&str], input: &[u8]) -> Output {
    Strata::new(root).args(args).stdin(input).output()
}

/// A temp store root holding `busybox:1.35`, or None (skipped) when the
/// host cannot run these tests ([`can_run`]).
#[cfg(feature = "image")]
pub fn setup_busybox() -> Option<(tempfile::TempDir, PathBuf)> {
    if !can_run() {
        return None;
    }
    let (t, root) = root_dir();
    make_busybox(&root);
    Some((t, root))
}

/// The JSON lines (`--progress rawjson` events) of `out`; every line that
/// starts with `{` must parse.
pub fn events(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
