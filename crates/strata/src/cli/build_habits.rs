//! Docker's and buildx's `build` habits that CI scripts lean on: `--label`,
//! `--annotation`, `--iidfile`, `--metadata-file`, `--add-host`,
//! `--shm-size`, `--ulimit`, `--call`, tags checked before anything runs,
//! and the inputs Docker accepts besides a directory: `-f -` (the
//! Dockerfile on stdin), `-` as the context (a tar, or a Dockerfile alone
//! with an empty context), a git URL and an http(s) tarball URL.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use strata_engine::build::TempDir;
use strata_engine::dockerfile::Dockerfile;
use strata_frontend::{BuildOptions, MountKind, Resolved, StageScope};
use strata_runtime::{ContainerExtras, Ulimit};
use strata_store::Store;

use super::BuildArgs;
use crate::cli::Global;

/// Every `-t` name against Docker's reference rules, before anything runs.
pub(super) fn validate_tags(tags: &[String]) -> anyhow::Result<()> {
    for t in tags {
        if let Err(e) = strata_oci::Reference::parse(t) {
            let repo = t.split('@').next().unwrap_or(t);
            let repo = match repo.rsplit_once(':') {
                Some((r, tag)) if !tag.contains('/') => r,
                _ => repo,
            };
            if repo.to_ascii_lowercase() != repo {
                anyhow::bail!(
                    "invalid tag {t:?}: invalid reference format: repository name must be lowercase"
                );
            }
            anyhow::bail!("invalid tag {t:?}: invalid reference format: {e}");
        }
    }
    Ok(())
}

/// `K=V` pairs (`--label`, `--annotation`); `flag` names the option.
pub(super) fn key_values(flag: &str, raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in raw {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if k.is_empty() {
            anyhow::bail!("{flag} {kv:?}: expected KEY=VALUE");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `--annotation [manifest:]K=V` (buildx's type prefix; only the image
/// manifest is written, so other types are refused).
pub(super) fn annotations(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut plain = Vec::new();
    for a in raw {
        let (k, _) = a.split_once('=').unwrap_or((a.as_str(), ""));
        match k.split_once(':') {
            Some((t, _)) if t == "manifest" || t.starts_with("manifest[") => {
                plain.push(a[t.len() + 1..].to_string())
            }
            Some((t @ ("index" | "manifest-descriptor" | "index-descriptor"), _)) => {
                anyhow::bail!("--annotation {a:?}: {t} annotations are not supported (strata writes a single image manifest; use manifest: or no prefix)")
            }
            _ => plain.push(a.clone()),
        }
    }
    key_values("--annotation", &plain)
}

/// Docker's sizes: bytes, or a number with k, m, g, t (binary units, an
/// optional trailing `b`), as `--shm-size 128m`.
pub(super) fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: {s:?}"))?;
    if n <= 0.0 {
        anyhow::bail!("invalid size: {s:?} (must be greater than 0)");
    }
    Ok((n * mult as f64) as u64)
}

/// `--add-host`, `--shm-size`, `--ulimit`.
pub(super) fn run_extra(a: &BuildArgs) -> anyhow::Result<ContainerExtras> {
    let mut extra = ContainerExtras::default();
    for h in &a.add_hosts {
        // HOST:IP (Docker) or HOST=IP (buildx); the IP may be IPv6.
        let (host, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .ok_or_else(|| anyhow::anyhow!("invalid argument {h:?} for \"--add-host\" flag: bad format for add-host: {h:?}"))?;
        if ip == "host-gateway" {
            anyhow::bail!(
                "--add-host {h}: host-gateway is not supported by strata (give the IP address)"
            );
        }
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if ip.parse::<std::net::IpAddr>().is_err() {
            anyhow::bail!("invalid argument {h:?} for \"--add-host\" flag: invalid IP address in add-host: {ip:?}");
        }
        if host.is_empty() {
            anyhow::bail!("invalid argument {h:?} for \"--add-host\" flag: empty host name");
        }
        extra.extra_hosts.push((host.to_string(), ip.to_string()));
    }
    if let Some(s) = &a.shm_size {
        extra.shm_size = Some(parse_size(s).context("--shm-size")?);
    }
    for u in &a.ulimits {
        extra
            .ulimits
            .push(Ulimit::parse(u).map_err(|e| anyhow::anyhow!("--ulimit {u}: {e}"))?);
    }
    Ok(extra)
}

/// `--cache-from NAME` naming an image of the local store (the classic
/// builder's meaning) is taken as a local image cache; every other value
/// (`type=...`, or a name the store does not have) stays a BuildKit cache
/// spec, as before.
pub(super) fn split_cache_from(
    g: &Global,
    raw: &[String],
) -> anyhow::Result<(Vec<strata_oci::Digest>, Vec<String>)> {
    let mut images = Vec::new();
    let mut specs = Vec::new();
    let bare: Vec<&String> = raw.iter().filter(|s| !s.contains('=')).collect();
    let store = if bare.is_empty() {
        None
    } else {
        Store::open(&g.store_root()).ok()
    };
    for s in raw {
        let local = match (&store, s.contains('=')) {
            (Some(st), false) => strata_engine::images::find_image_id(st, s).ok(),
            _ => None,
        };
        match local {
            Some(id) => images.push(id),
            None => specs.push(s.clone()),
        }
    }
    Ok((images, specs))
}

/// After a successful build: `--iidfile` and `--metadata-file`.
pub(super) fn write_result_files(
    store: &Store,
    a: &BuildArgs,
    out: &strata_engine::BuildOutput,
) -> anyhow::Result<()> {
    if let Some(p) = &a.iidfile {
        std::fs::write(p, out.image_id.to_string())
            .with_context(|| format!("--iidfile: writing {}", p.display()))?;
    }
    if let Some(p) = &a.metadata_file {
        let size = store.blobs().size(&out.manifest_digest).unwrap_or(0);
        let mut m = serde_json::Map::new();
        m.insert(
            "containerimage.config.digest".into(),
            out.image_id.to_string().into(),
        );
        m.insert(
            "containerimage.digest".into(),
            out.manifest_digest.to_string().into(),
        );
        m.insert(
            "containerimage.descriptor".into(),
            serde_json::json!({
                "mediaType": strata_oci::media_types::DOCKER_MANIFEST,
                "digest": out.manifest_digest.to_string(),
                "size": size,
            }),
        );
        if !out.tags.is_empty() {
            m.insert("image.name".into(), out.tags.join(",").into());
        }
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(m))?;
        std::fs::write(p, text + "\n")
            .with_context(|| format!("--metadata-file: writing {}", p.display()))?;
    }
    Ok(())
}

/// What `prepare_inputs` made: temporary directories removed on drop.
#[derive(Default)]
pub(super) struct Inputs {
    _dirs: Vec<TempDir>,
    _plain: Vec<PlainTemp>,
}

/// A temp dir outside the store (for a stdin Dockerfile when no store is
/// wanted), removed on drop.
struct PlainTemp(PathBuf);

impl Drop for PlainTemp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store_temp(g: &Global, prefix: &str) -> anyhow::Result<TempDir> {
    let store = Store::open(&g.store_root())
        .with_context(|| format!("opening the store at {}", g.store_root().display()))?;
    TempDir::new(&store, prefix).context("creating a temporary directory in the store")
}

/// The kind of stream: a tar (possibly compressed) or text.
fn looks_like_archive(head: &[u8]) -> bool {
    let magic: [&[u8]; 4] = [
        &[0x1f, 0x8b],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    magic.iter().any(|m| head.starts_with(m)) || (head.len() >= 262 && &head[257..262] == b"ustar")
}

/// Reads up to 512 bytes without losing them.
fn peek(r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    r.take(512).read_to_end(&mut head)?;
    Ok(head)
}

/// Extracts a context tar into `dir` with the store's safe extraction
/// (never through a link out of `dir`).
fn extract_context(data: &mut dyn Read, dir: &Path) -> anyhow::Result<()> {
    strata_store::apply_layer(data, dir, strata_store::ApplyMode::Flatten).map_err(|e| {
        anyhow::anyhow!("unable to prepare context: extracting the context tar: {e}")
    })?;
    Ok(())
}

/// A context that is `-`, a git URL or an http(s) URL is materialised in
/// a temporary directory, and `-f -` in a temporary file; `a.context` and
/// `a.file` then point at them, so the rest of the build reads plain files.
/// A missing context directory is reported as Docker does.
pub(super) fn prepare_inputs(g: &Global, a: &mut BuildArgs) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs::default();
    let ctx = a.context.to_string_lossy().into_owned();
    let stdin_file = a.file.as_deref() == Some(Path::new("-"));
    let remote = strata_engine::sources::is_remote(&ctx);
    if ctx == "-" {
        if stdin_file {
            anyhow::bail!(
                "invalid argument: can't use stdin for both build context and dockerfile"
            );
        }
        let t = store_temp(g, "context")?;
        let dir = t.0.join("ctx");
        std::fs::create_dir_all(&dir)?;
        let mut stdin = std::io::stdin().lock();
        let head = peek(&mut stdin).context("reading the context from stdin")?;
        if looks_like_archive(&head) {
            let mut all = std::io::Cursor::new(head).chain(stdin);
            extract_context(&mut all, &dir)?;
        } else {
            // A Dockerfile alone: an empty context.
            let mut text = head;
            stdin
                .read_to_end(&mut text)
                .context("reading the Dockerfile from stdin")?;
            let df = t.0.join("stdin").join("Dockerfile");
            std::fs::create_dir_all(df.parent().unwrap())?;
            std::fs::write(&df, text)?;
            if a.file.is_none() {
                a.file = Some(df);
            }
        }
        a.context = dir;
        inputs._dirs.push(t);
    } else if strata_engine::sources::is_git_url(&ctx) {
        let t = store_temp(g, "context")?;
        let src = strata_engine::sources::git::GitSource::parse(&ctx);
        let co = strata_engine::sources::git::fetch(&src, &t.0.join("git"), false)
            .map_err(|e| anyhow::Error::new(e).context("unable to prepare context"))?;
        a.context = co.root;
        inputs._dirs.push(t);
    } else if strata_engine::sources::is_http_url(&ctx) {
        let t = store_temp(g, "context")?;
        let dl = strata_engine::sources::http::download(&ctx, &t.0, "download", None)
            .map_err(|e| anyhow::Error::new(e).context("unable to prepare context"))?;
        let dir = t.0.join("ctx");
        std::fs::create_dir_all(&dir)?;
        let mut f = std::fs::File::open(&dl.path)?;
        let head = peek(&mut f)?;
        if looks_like_archive(&head) {
            let mut f = std::fs::File::open(&dl.path)?;
            extract_context(&mut f, &dir)?;
        } else {
            // A plain file at the URL is the Dockerfile (empty context).
            let df = t.0.join("url").join("Dockerfile");
            std::fs::create_dir_all(df.parent().unwrap())?;
            std::fs::rename(&dl.path, &df)?;
            if a.file.is_none() {
                a.file = Some(df);
            }
        }
        a.context = dir;
        inputs._dirs.push(t);
    } else {
        match std::fs::metadata(&a.context) {
            Err(_) => anyhow::bail!("unable to prepare context: path {ctx:?} not found"),
            Ok(m) if !m.is_dir() => {
                anyhow::bail!("unable to prepare context: context must be a directory: {ctx}")
            }
            Ok(_) => {}
        }
    }
    // With a URL or stdin context, `-f` names a file inside it (as Docker).
    if (remote || ctx == "-") && !stdin_file {
        if let Some(f) = a.file.as_ref().filter(|f| f.is_relative()) {
            a.file = Some(a.context.join(f));
        }
    }
    if stdin_file {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .context("reading the Dockerfile from stdin")?;
        // Outside the store when only checking (checks never create a store).
        let base = if a.check || a.dry_run || a.call.is_some() {
            let p = std::env::temp_dir().join(format!(
                "strata-dockerfile-{}",
                strata_runtime::new_container_id().trim_start_matches("strata-")
            ));
            inputs._plain.push(PlainTemp(p.clone()));
            p
        } else {
            let t = store_temp(g, "dockerfile")?;
            let p = t.0.clone();
            inputs._dirs.push(t);
            p
        };
        std::fs::create_dir_all(&base)?;
        let df = base.join("Dockerfile");
        let mut f = std::fs::File::create(&df)?;
        f.write_all(&text)?;
        a.file = Some(df);
    }
    Ok(inputs)
}

/// `--call targets|outline|check` (BuildKit's subrequests); `None` for
/// `--call build` (the default).
pub(super) fn call(g: &Global, a: &BuildArgs) -> anyhow::Result<Option<u8>> {
    let Some(c) = &a.call else {
        return Ok(None);
    };
    let kind = c.split(',').next().unwrap_or("");
    match kind {
        "build" | "" => Ok(None),
        "check" => super::super::check::run_for_build(g, a).map(Some),
        "targets" | "outline" => {
            let dockerfile = a.dockerfile();
            let df = Dockerfile::read(&dockerfile, dockerfile.display().to_string())
                .with_context(|| format!("cannot read {}", dockerfile.display()))?;
            let out = if kind == "targets" {
                targets(&df)?
            } else {
                outline(&df, a)?
            };
            print!("{out}");
            Ok(Some(0))
        }
        o => anyhow::bail!("--call {o}: unknown subrequest (use build, check, outline or targets)"),
    }
}

/// BuildKit's doc comment: among the comment lines directly above line
/// `line` (1-based), the one starting with `NAME ` gives the rest.
fn doc_comment(lines: &[&str], line: usize, name: &str) -> Option<String> {
    let mut i = line.checked_sub(1)?;
    while i > 0 {
        let l = lines[i - 1].trim();
        let Some(c) = l.strip_prefix('#') else {
            break;
        };
        let c = c.trim();
        if let Some(rest) = c.strip_prefix(name).and_then(|r| r.strip_prefix(' ')) {
            return Some(rest.trim().to_string());
        }
        i -= 1;
    }
    None
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 < r.len() {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `--call targets`: the named stages with their descriptions; the default
/// target (the last stage) is marked.
fn targets(df: &Dockerfile) -> anyhow::Result<String> {
    let (_, p) = df
        .plan(&BuildOptions::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let lines: Vec<&str> = df.text.lines().collect();
    let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
    let last = p.stages.len().saturating_sub(1);
    for s in &p.stages {
        let Some(name) = &s.name else {
            continue;
        };
        let mut label = name.clone();
        if s.index == last {
            label.push_str(" (default)");
        }
        let desc = doc_comment(&lines, s.location.line, name).unwrap_or_default();
        rows.push(vec![label, desc]);
    }
    Ok(table(&rows))
}

/// `--call outline`: the target, its build args (defaults and the doc
/// comments above each ARG), and the secrets and SSH sockets it uses.
fn outline(df: &Dockerfile, a: &BuildArgs) -> anyhow::Result<String> {
    let opts = BuildOptions {
        build_args: super::parse_build_args(&a.build_args),
        target: a.target.clone(),
        ..BuildOptions::default()
    };
    let (_, p) = df.plan(&opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    let lines: Vec<&str> = df.text.lines().collect();
    let target = &p.stages[p.target];
    let mut out = String::new();
    out.push_str(&format!(
        "TARGET:      {}\n",
        target
            .name
            .clone()
            .unwrap_or_else(|| format!("stage {}", target.index))
    ));
    if let Some(name) = &target.name {
        if let Some(d) = doc_comment(&lines, target.location.line, name) {
            out.push_str(&format!("DESCRIPTION: {d}\n"));
        }
    }
    // ARGs: the global ones the needed FROM lines use or stages redeclare,
    // and those of the needed stages, in order, each once.
    let mut args: Vec<(String, String, String)> = Vec::new();
    let mut push = |name: &str, value: String, line: usize| {
        if args.iter().any(|(n, _, _)| n == name) {
            return;
        }
        let desc = doc_comment(&lines, line, name).unwrap_or_default();
        args.push((name.to_string(), value, desc));
    };
    for g in &p.global_args {
        push(
            &g.name,
            g.value.clone().unwrap_or_default(),
            g.location.line,
        );
    }
    let mut secrets: Vec<(String, bool)> = Vec::new();
    let mut ssh: Vec<(String, bool)> = Vec::new();
    for &i in &p.build_order() {
        let s = &p.stages[i];
        let mut scope = StageScope::new(&p, i, &p.known_base_env(i));
        for step in &s.steps {
            if let strata_frontend::Instruction::Arg(decls) = &step.instruction {
                for d in decls {
                    let v = p
                        .build_args
                        .get(&d.name)
                        .cloned()
                        .or_else(|| d.default.clone())
                        .unwrap_or_default();
                    push(&d.name, v, step.location.line);
                }
            }
            let Ok(r) = scope.resolve(step) else {
                continue;
            };
            if let Resolved::Run { mounts, .. } = &r {
                for m in mounts {
                    match m.kind {
                        MountKind::Secret => {
                            let id = m.id.clone().or_else(|| {
                                m.target
                                    .as_deref()
                                    .and_then(|t| t.rsplit('/').next())
                                    .map(str::to_string)
                            });
                            if let Some(id) = id {
                                if !secrets.iter().any(|(n, _)| *n == id) {
                                    secrets.push((id, m.required));
                                }
                            }
                        }
                        MountKind::Ssh => {
                            let id = m.id.clone().unwrap_or_else(|| "default".into());
                            if !ssh.iter().any(|(n, _)| *n == id) {
                                ssh.push((id, m.required));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    if !args.is_empty() {
        let mut rows = vec![vec![
            "BUILD ARG".to_string(),
            "VALUE".to_string(),
            "DESCRIPTION".to_string(),
        ]];
        rows.extend(args.into_iter().map(|(n, v, d)| vec![n, v, d]));
        out.push('\n');
        out.push_str(&table(&rows));
    }
    for (title, list) in [("SECRET", secrets), ("SSH", ssh)] {
        if list.is_empty() {
            continue;
        }
        let mut rows = vec![vec![title.to_string(), "REQUIRED".to_string()]];
        rows.extend(
            list.into_iter()
                .map(|(n, r)| vec![n, if r { "true" } else { "false" }.to_string()]),
        );
        out.push('\n');
        out.push_str(&table(&rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tags() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        let e = validate_tags(&["Foo:bar".into()]).unwrap_err().to_string();
        assert!(
            e.contains("invalid reference format: repository name must be lowercase"),
            "{e}"
        );
        validate_tags(&["foo:bar".into(), "localhost:5000/a/b:1".into()]).unwrap();
        let a = annotations(&[
            "a=1".into(),
            "manifest:b=2".into(),
            "manifest[linux/amd64]:c=3".into(),
        ])
        .unwrap();
        assert_eq!(
            a.into_iter().collect::<Vec<_>>(),
            [
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into())
            ]
        );
        assert!(annotations(&["index:x=1".into()]).is_err());
    }

    #[test]
    fn doc_comments_follow_buildkit() {
        let text = "# base is the start\nFROM busybox AS base\n\n# Compiles it\n# build compiles the program\nFROM base AS build\n";
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            doc_comment(&lines, 2, "base").as_deref(),
            Some("is the start")
        );
        assert_eq!(
            doc_comment(&lines, 6, "build").as_deref(),
            Some("compiles the program")
        );
        assert_eq!(doc_comment(&lines, 6, "other"), None);
    }
}
