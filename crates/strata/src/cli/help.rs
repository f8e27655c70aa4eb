//! The clap command as users meet it: the version with the git commit it
//! was built from, one example under every command's `--help`, and shell
//! completion scripts (`strata completion bash|zsh|fish`).

use clap::CommandFactory;

/// `strata --version`: `strata 0.1.0, build 1a2b3c4`.
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    ", build ",
    env!("STRATA_GIT_COMMIT")
);

/// One example per command, by its path under `strata`.
const EXAMPLES: &[(&str, &str)] = &[
    ("", "strata build -t hello:latest ."),
    ("build", "strata build -t myapp:1.0 -f Dockerfile ."),
    ("check", "strata check -f Dockerfile ."),
    ("run", "strata run --rm busybox:1.35 echo hello"),
    (
        "create",
        "strata create --name web -p 8080:80 busybox:1.35 httpd -f -p 80",
    ),
    ("start", "strata start -a web"),
    ("stop", "strata stop -t 5 web"),
    ("restart", "strata restart web"),
    ("kill", "strata kill -s HUP web"),
    ("rm", "strata rm -f web"),
    ("wait", "strata wait web"),
    ("ps", "strata ps -a --format '{{.Names}} {{.Status}}'"),
    ("logs", "strata logs -f --tail 10 web"),
    ("exec", "strata exec -it web sh"),
    ("cp", "strata cp web:/etc/hostname ./hostname"),
    ("top", "strata top web"),
    ("commit", "strata commit -m 'add config' web myapp:patched"),
    ("export", "strata export web -o web.tar"),
    ("container", "strata container ls -a"),
    ("container ls", "strata container ls -aq"),
    (
        "container create",
        "strata container create --name web busybox:1.35 sleep 1d",
    ),
    (
        "container run",
        "strata container run -d --name web -p 127.0.0.1:8080:80 busybox:1.35 httpd -f -p 80",
    ),
    ("container start", "strata container start web"),
    ("container stop", "strata container stop web"),
    ("container restart", "strata container restart -t 2 web"),
    ("container kill", "strata container kill web"),
    ("container rm", "strata container rm web"),
    ("container wait", "strata container wait web"),
    ("container logs", "strata container logs -t web"),
    ("container exec", "strata container exec -e X=1 web env"),
    ("container inspect", "strata container inspect web"),
    ("container prune", "strata container prune -f"),
    (
        "container cp",
        "strata container cp ./app.conf web:/etc/app.conf",
    ),
    ("container top", "strata container top web"),
    (
        "container commit",
        "strata container commit web myapp:patched",
    ),
    ("container export", "strata container export -o web.tar web"),
    ("manifest", "strata manifest inspect myapp:1.0"),
    (
        "manifest create",
        "strata manifest create myapp:1.0 myapp:amd64 myapp:arm64",
    ),
    ("manifest add", "strata manifest add myapp:1.0 myapp:arm64"),
    ("manifest inspect", "strata manifest inspect myapp:1.0"),
    ("binfmt", "strata binfmt ls"),
    ("binfmt install", "strata binfmt install"),
    ("binfmt ls", "strata binfmt ls"),
    (
        "images",
        "strata images --format '{{.Repository}}:{{.Tag}} {{.Size}}'",
    ),
    ("image", "strata image ls --filter dangling=true"),
    (
        "image ls",
        "strata image ls --filter reference='busy*' --digests",
    ),
    ("image rm", "strata image rm busybox:1.35"),
    (
        "image inspect",
        "strata image inspect -f '{{json .Config}}' busybox:1.35",
    ),
    (
        "image history",
        "strata image history --no-trunc busybox:1.35",
    ),
    (
        "image tag",
        "strata image tag busybox:1.35 registry.local/busybox:1.35",
    ),
    ("image load", "strata image load -i busybox.tar"),
    (
        "image save",
        "strata image save -o busybox.tar busybox:1.35",
    ),
    (
        "image import",
        "strata image import rootfs.tar myroot:1 --change 'CMD [\"sh\"]'",
    ),
    ("image prune", "strata image prune -a -f"),
    ("image explain", "strata image explain myapp:1.0"),
    ("rmi", "strata rmi busybox:1.35"),
    ("tag", "strata tag busybox:1.35 mybusybox:latest"),
    (
        "inspect",
        "strata inspect -f '{{.Config.Cmd}}' busybox:1.35",
    ),
    ("history", "strata history -H=false busybox:1.35"),
    ("load", "strata load -i busybox.tar"),
    ("save", "strata save -o images.tar busybox:1.35 myapp:1.0"),
    (
        "import",
        "strata import rootfs.tar myroot:1 --change 'ENV PATH=/bin'",
    ),
    ("pull", "strata pull busybox:1.35"),
    ("push", "strata push registry.local:5000/myapp:1.0"),
    ("login", "strata login -u me registry.local:5000"),
    ("logout", "strata logout registry.local:5000"),
    ("system", "strata system df"),
    ("system df", "strata system df"),
    ("system prune", "strata system prune -a -f"),
    ("system check", "strata system check --repair"),
    (
        "completion",
        "strata completion bash > /etc/bash_completion.d/strata",
    ),
];

fn decorate(mut cmd: clap::Command, path: &str) -> clap::Command {
    if let Some((_, ex)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
        cmd = cmd.after_help(format!("Example:\n  {ex}"));
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |s| decorate(s, &sub_path));
    }
    cmd
}

/// The full command tree, decorated.
pub(crate) fn command() -> clap::Command {
    decorate(super::Cli::command().version(VERSION), "")
}

#[derive(clap::Args, Debug)]
pub(crate) struct CompletionArgs {
    /// The shell: bash, zsh or fish
    pub shell: clap_complete::Shell,
}

/// `strata completion SHELL`: the script on stdout.
pub(crate) fn completion(a: CompletionArgs) -> anyhow::Result<u8> {
    let mut cmd = command();
    clap_complete::generate(a.shell, &mut cmd, "strata", &mut std::io::stdout());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, at every depth, shows one example under `--help`.
    #[test]
    fn every_command_has_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_name() != "help" && cmd.get_after_help().is_none() {
                missing.push(path.to_string());
            }
            for s in cmd.get_subcommands() {
                let p = format!("{path} {}", s.get_name()).trim().to_string();
                walk(s, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "commands without an example: {missing:?}"
        );
    }
}
