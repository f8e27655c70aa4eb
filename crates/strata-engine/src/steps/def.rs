//! The typed definitions of steps: a resolved instruction as RUN, COPY/ADD
//! or a metadata instruction, with what their keying and execution need
//! to know of it.

use strata_frontend::{Command, FromRef, Heredoc, Mount, Resolved};

use crate::error::StepError;
use crate::inputs::BuildInputs;
use crate::sources::is_remote;

/// A RUN, typed.
pub(crate) struct RunStep<'r> {
    pub(crate) resolved: &'r Resolved,
    pub(crate) command: &'r Command,
    pub(crate) mounts: &'r [Mount],
    pub(crate) network: Option<&'r str>,
    pub(crate) heredocs: &'r [Heredoc],
}

impl<'r> RunStep<'r> {
    /// `resolved` as a RUN, if it is one.
    pub(crate) fn of(resolved: &'r Resolved) -> Option<RunStep<'r>> {
        match resolved {
            Resolved::Run {
                command,
                mounts,
                network,
                heredocs,
                ..
            } => Some(RunStep {
                resolved,
                command,
                mounts,
                network: network.as_deref(),
                heredocs,
            }),
            _ => None,
        }
    }
}

/// Which instruction a file step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Copy,
    Add,
}

impl FileKind {
    /// The instruction's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FileKind::Copy => "COPY",
            FileKind::Add => "ADD",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A COPY or ADD with its flags.
pub(crate) struct FileStep<'a> {
    pub(crate) resolved: &'a Resolved,
    pub(crate) kind: FileKind,
    pub(crate) srcs: &'a [String],
    pub(crate) dest: &'a str,
    pub(crate) from: Option<&'a FromRef>,
    pub(crate) chown: Option<&'a str>,
    pub(crate) chmod: Option<&'a str>,
    pub(crate) link: bool,
    pub(crate) parents: bool,
    pub(crate) exclude: &'a [String],
    pub(crate) heredocs: &'a [Heredoc],
    pub(crate) checksum: Option<&'a str>,
    pub(crate) keep_git_dir: bool,
    pub(crate) unpack: bool,
}

impl<'a> FileStep<'a> {
    /// `r` as a file step, if it is a COPY or an ADD.
    pub(crate) fn of(r: &'a Resolved) -> Option<FileStep<'a>> {
        match r {
            Resolved::Copy {
                srcs,
                dest,
                from,
                chown,
                chmod,
                link,
                parents,
                exclude,
                heredocs,
            } => Some(FileStep {
                resolved: r,
                kind: FileKind::Copy,
                srcs,
                dest,
                from: from.as_ref(),
                chown: chown.as_deref(),
                chmod: chmod.as_deref(),
                link: *link,
                parents: *parents,
                exclude,
                heredocs,
                checksum: None,
                keep_git_dir: false,
                unpack: false,
            }),
            Resolved::Add {
                srcs,
                dest,
                chown,
                chmod,
                link,
                exclude,
                checksum,
                keep_git_dir,
                unpack,
                heredocs,
            } => Some(FileStep {
                resolved: r,
                kind: FileKind::Add,
                srcs,
                dest,
                from: None,
                chown: chown.as_deref(),
                chmod: chmod.as_deref(),
                link: *link,
                parents: false,
                exclude,
                heredocs,
                checksum: checksum.as_deref(),
                keep_git_dir: *keep_git_dir,
                unpack: unpack.unwrap_or(true),
            }),
            _ => None,
        }
    }

    /// Does `--chown` name a user or group (read from /etc/passwd)?
    pub(crate) fn needs_passwd(&self) -> bool {
        self.chown
            .is_some_and(|c| c.split(':').any(|part| part.parse::<u64>().is_err()))
    }

    /// An ADD of URLs or git repositories (downloads or clones to key).
    pub(crate) fn fetches_remote(&self) -> bool {
        self.kind == FileKind::Add && self.srcs.iter().any(|s| is_remote(s))
    }
}

/// A resolved instruction, typed by family.
pub(crate) enum StepDef<'r> {
    /// RUN.
    Run(RunStep<'r>),
    /// COPY or ADD.
    Files(FileStep<'r>),
    /// Every other instruction: it edits the image config (WORKDIR may
    /// also add a layer).
    Metadata(&'r Resolved),
}

impl<'r> StepDef<'r> {
    /// The typed definition of `resolved`.
    pub(crate) fn of(resolved: &'r Resolved) -> Result<StepDef<'r>, StepError> {
        if let Some(run) = RunStep::of(resolved) {
            return Ok(StepDef::Run(run));
        }
        if let Some(files) = FileStep::of(resolved) {
            return Ok(StepDef::Files(files));
        }
        match resolved {
            Resolved::From { .. } => Err(StepError::FromInStage),
            r => Ok(StepDef::Metadata(r)),
        }
    }

    /// The resolved instruction (serialized into the key).
    pub(crate) fn resolved(&self) -> &'r Resolved {
        match self {
            StepDef::Run(r) => r.resolved,
            StepDef::Files(f) => f.resolved,
            StepDef::Metadata(r) => r,
        }
    }

    /// Does executing the step mount the stage's root filesystem? RUN and
    /// WORKDIR always; COPY/ADD unless `--link` without a `--chown` by
    /// name (see `copy.rs`).
    pub(crate) fn needs_rootfs(&self) -> bool {
        match self {
            StepDef::Run(_) => true,
            StepDef::Files(f) => !f.link || f.needs_passwd(),
            StepDef::Metadata(r) => matches!(r, Resolved::Workdir(_)),
        }
    }

    /// Can the key be computed twice without fetching anything (a
    /// download, a clone, a pull) or reporting events?
    pub(crate) fn keyed_without_side_effects(&self, inputs: &BuildInputs<'_>) -> bool {
        let unresolved_image = |from: Option<&strata_frontend::FromRef>| {
            matches!(from, Some(strata_frontend::FromRef::Image(name))
                if inputs.named(name).is_none())
        };
        match self {
            StepDef::Run(r) => !r.mounts.iter().any(|m| unresolved_image(m.from.as_ref())),
            StepDef::Files(f) => !f.fetches_remote() && !unresolved_image(f.from),
            StepDef::Metadata(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(srcs: &[&str], link: bool, chown: Option<&str>) -> Resolved {
        Resolved::Copy {
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
            dest: "/d".into(),
            from: None,
            chown: chown.map(str::to_string),
            chmod: None,
            link,
            parents: false,
            exclude: Vec::new(),
            heredocs: Vec::new(),
        }
    }

    fn add(srcs: &[&str]) -> Resolved {
        Resolved::Add {
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
            dest: "/d".into(),
            chown: None,
            chmod: None,
            link: false,
            exclude: Vec::new(),
            checksum: None,
            keep_git_dir: false,
            unpack: None,
            heredocs: Vec::new(),
        }
    }

    fn files(r: &Resolved) -> FileStep<'_> {
        match StepDef::of(r).unwrap() {
            StepDef::Files(f) => f,
            _ => panic!("not a file step"),
        }
    }

    #[test]
    fn copy_and_add_are_told_apart_by_kind() {
        let url = "https://example.com/a.tar.gz";
        let c = copy(&[url], false, None);
        let a = add(&[url]);
        assert_eq!(files(&c).kind, FileKind::Copy);
        assert_eq!(files(&a).kind, FileKind::Add);
        // Only ADD fetches a URL; COPY reads a context path of that name.
        assert!(!files(&c).fetches_remote());
        assert!(files(&a).fetches_remote());
        // ADD unpacks local archives by default, COPY never.
        assert!(files(&a).unpack && !files(&c).unpack);
    }

    #[test]
    fn a_linked_copy_mounts_no_rootfs_unless_chown_names_a_user() {
        let rootfs = |r: &Resolved| StepDef::of(r).unwrap().needs_rootfs();
        assert!(rootfs(&copy(&["a"], false, None)));
        assert!(!rootfs(&copy(&["a"], true, None)));
        assert!(!rootfs(&copy(&["a"], true, Some("1000:1000"))));
        assert!(rootfs(&copy(&["a"], true, Some("app"))));
        assert!(rootfs(&Resolved::Workdir("/w".into())));
        assert!(!rootfs(&Resolved::User("app".into())));
    }

    #[test]
    fn from_is_no_step() {
        let from = Resolved::From {
            base: strata_frontend::Base::Scratch,
            name: None,
            platform: None,
        };
        assert!(matches!(StepDef::of(&from), Err(StepError::FromInStage)));
    }
}
