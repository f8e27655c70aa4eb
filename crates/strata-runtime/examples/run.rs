//! Manual check of the runtime: `run [-t] [-i] [-u USER] [--host] ROOTFS CMD...`
//! runs CMD in ROOTFS with inherited stdio and exits with its code.

use strata_runtime::*;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let (mut tty, mut stdin, mut host, mut user) = (false, false, false, String::new());
    while let Some(a) = args.first().cloned() {
        match a.as_str() {
            "-t" => tty = true,
            "-i" => stdin = true,
            "-it" | "-ti" => (tty, stdin) = (true, true),
            "--host" => host = true,
            "-u" => {
                args.remove(0);
                user = args.first().cloned().unwrap_or_default();
            }
            _ => break,
        }
        args.remove(0);
    }
    if args.len() < 2 {
        eprintln!("usage: run [-t] [-i] [-u USER] [--host] ROOTFS CMD...");
        std::process::exit(2);
    }
    let rootfs = std::path::PathBuf::from(args.remove(0));
    let result = resolve_user(&rootfs, &user).and_then(|user| {
        let spec = ContainerSpec {
            id: new_container_id(),
            rootfs,
            process: ProcessSpec {
                args,
                user,
                tty,
                stdin,
                ..Default::default()
            },
            network: if host { Network::Host } else { Network::None },
            mounts: vec![],
            hostname: None,
            readonly_rootfs: false,
            extra: Default::default(),
        };
        Runc::locate()?.run(&spec, StdioConfig::Inherit)
    });
    match result {
        Ok(st) => std::process::exit(st.code),
        Err(e) => {
            eprintln!("strata: {e}");
            std::process::exit(e.docker_exit_code());
        }
    }
}
