//! Registry commands: pull, push, login, logout. The work is in
//! `strata-registry`; this module parses flags, reads passwords and prints
//! Docker-like output.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use strata_oci::Reference;
use strata_registry::{
    ClientOptions, Credential, CredentialStore, ProgressMode, PullOptions, PushOptions,
};
use strata_store::Store;

use super::Global;

#[derive(clap::Args, Debug)]
pub(crate) struct PullArgs {
    pub name: String,
    /// Platform to pick from a manifest list (default: the host's); several, comma-separated, make one multi-platform tag
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull every platform of a multi-platform image and tag them as one multi-platform tag
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
    #[arg(short, long)]
    pub quiet: bool,
    /// Use plain http for this registry (host:port); repeatable.
    /// Loopback registries always use http. Also $STRATA_INSECURE_REGISTRIES.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct PushArgs {
    pub name: String,
    #[arg(short, long)]
    pub quiet: bool,
    /// Use plain http for this registry (host:port); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct LoginArgs {
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Use plain http for this registry (host:port); repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct LogoutArgs {
    pub registry: Option<String>,
}

pub(super) fn client_options(insecure: &[String]) -> ClientOptions {
    ClientOptions {
        insecure_registries: insecure.to_vec(),
        ..Default::default()
    }
}

fn parse_ref(name: &str) -> anyhow::Result<Reference> {
    Ok(Reference::parse(name)?)
}

fn open_store(g: &Global) -> anyhow::Result<Store> {
    let root = g.store_root();
    Store::open(&root).with_context(|| format!("open the store at {}", root.display()))
}

pub(crate) fn pull(g: &Global, a: PullArgs) -> anyhow::Result<u8> {
    let reference = parse_ref(&a.name)?;
    // Several platforms (comma-separated): each pulled, then one
    // multi-platform tag over them.
    let platforms = a
        .platform
        .as_deref()
        .map(|p| {
            p.split(',')
                .map(|p| strata_registry::parse_platform(p.trim()))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    // --all-platforms: every platform the index names (none for a
    // single-platform image: the host's, as without the flag).
    let platforms = if a.all_platforms {
        strata_registry::index_platforms(&reference, &client_options(&a.insecure_registry))
            .with_context(|| format!("list the platforms of {}", reference.familiar()))?
    } else {
        platforms
    };
    let platform = platforms.first().cloned();
    let store = open_store(g)?;
    // Stopped by a signal, a pull removes the temp blobs it is writing
    // before it exits, as load and import do (after SIGKILL, the next
    // pull, load or GC removes them).
    let root = store.root().to_path_buf();
    super::cleanup_on_signal("pull", move || {
        strata_store::gc::remove_own_temp_blobs(&root);
    });
    let opts = PullOptions {
        platform: platform.clone(),
        client: client_options(&a.insecure_registry),
        progress: ProgressMode::auto(a.quiet),
        jobs: 3,
    };
    let untagged = Reference::parse_without_default_tag(&a.name)
        .is_ok_and(|r| r.tag().is_none() && r.digest().is_none());
    if !a.quiet && untagged {
        println!("Using default tag: latest");
    }
    let mut entries = Vec::new();
    for extra in platforms.iter().skip(1) {
        let opts = PullOptions {
            platform: Some(extra.clone()),
            ..opts.clone()
        };
        let p = strata_registry::pull(&store, &reference, &opts)
            .with_context(|| format!("pull {} for {extra}", reference.familiar()))?;
        entries.push(strata_store::transfer::IndexEntry {
            platform: extra.clone(),
            image: p.id,
        });
    }
    let p = strata_registry::pull(&store, &reference, &opts)
        .with_context(|| format!("pull {}", reference.familiar()))?;
    if let (Some(first), Some(tag)) = (&platform, &p.tagged) {
        if !entries.is_empty() {
            entries.insert(
                0,
                strata_store::transfer::IndexEntry {
                    platform: first.clone(),
                    image: p.id.clone(),
                },
            );
            strata_store::transfer::tag_index(&store, tag, &entries, None)?;
        }
    }
    if a.quiet {
        println!("{reference}");
        return Ok(0);
    }
    println!("Digest: {}", p.repo_digest);
    let shown = reference.familiar();
    if p.up_to_date() {
        println!("Status: Image is up to date for {shown}");
    } else {
        println!("Status: Downloaded newer image for {shown}");
    }
    println!("{reference}");
    Ok(0)
}

pub(crate) fn push(g: &Global, a: PushArgs) -> anyhow::Result<u8> {
    let reference = parse_ref(&a.name)?;
    let store = open_store(g)?;
    let opts = PushOptions {
        client: client_options(&a.insecure_registry),
        progress: ProgressMode::auto(a.quiet),
        ..Default::default()
    };
    let p = strata_registry::push(&store, &reference, &opts)
        .with_context(|| format!("push {}", reference.familiar()))?;
    if a.quiet {
        println!("{reference}");
    } else {
        println!("{}: digest: {} size: {}", p.reference, p.digest, p.size);
    }
    Ok(0)
}

/// `https://index.docker.io/v1/`, `http://host:5000/` → the registry name.
fn registry_name(arg: Option<&str>) -> String {
    let s = arg.unwrap_or("docker.io");
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

pub(crate) fn login(_g: &Global, a: LoginArgs) -> anyhow::Result<u8> {
    let registry = registry_name(a.registry.as_deref());
    let creds = CredentialStore::default();
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password_stdin && a.username.is_none() {
        bail!("must provide --username with --password-stdin");
    }
    let stored = if a.username.is_none() && a.password.is_none() {
        creds.get(&registry).ok().flatten()
    } else {
        None
    };
    let cred = match stored {
        Some(c) => {
            println!(
                "Authenticating with existing credentials... [Username: {}]",
                c.username
            );
            c
        }
        None => {
            let username = match a.username {
                Some(u) => u,
                None => prompt("Username: ", true)?,
            };
            let password = if let Some(p) = a.password {
                eprintln!(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
                );
                p
            } else if a.password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("read the password from stdin")?;
                line.trim_end_matches(['\n', '\r']).to_string()
            } else {
                prompt("Password: ", false)?
            };
            if username.is_empty() || password.is_empty() {
                bail!("username and password are required to log in to {registry}");
            }
            Credential { username, password }
        }
    };
    let opts = ClientOptions {
        credential: Some(cred.clone()),
        ..client_options(&a.insecure_registry)
    };
    strata_registry::Client::new(&registry, &opts)
        .and_then(|c| c.ping())
        .with_context(|| format!("login to {registry} failed"))?;
    let dest = creds
        .store(&registry, &cred)
        .with_context(|| format!("save the credentials for {registry}"))?;
    if dest == creds.path().display().to_string() {
        eprintln!("WARNING! Your password will be stored unencrypted in {dest}.");
    }
    println!("Login Succeeded");
    Ok(0)
}

pub(crate) fn logout(_g: &Global, a: LogoutArgs) -> anyhow::Result<u8> {
    let registry = registry_name(a.registry.as_deref());
    let key = strata_registry::config_key(&registry);
    if CredentialStore::default().erase(&registry)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(0)
}

/// Reads a line from the terminal; `echo` false hides the input.
#[allow(unsafe_code)] // libc calls, each with its SAFETY comment
fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "cannot prompt for {} (stdin is not a terminal): use --username and --password-stdin",
            label.trim_end_matches([':', ' ']).to_lowercase()
        );
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let mut saved: Option<libc::termios> = None;
    if !echo {
        // SAFETY: termios is plain data; fd 0 is a terminal (checked above).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) == 0 {
                saved = Some(t);
                t.c_lflag &= !libc::ECHO;
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        // SAFETY: restores the attributes read above.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
        eprintln!();
    }
    r.context("read from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
