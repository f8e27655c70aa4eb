//! `ps`: the container table.

use super::*;

#[derive(clap::Args, Debug)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// `table`, `json`, or a Go template such as '{{.Names}} {{.Status}}'
    #[arg(long)]
    pub format: Option<String>,
}

pub(super) fn status_text(s: &State) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(crate::cli::output::parse_time)
            .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds())
            .map(crate::cli::output::human_duration)
            .unwrap_or_default()
    };
    match s.status.as_str() {
        "running" => format!("Up {}", since(&s.started_at)),
        "created" => "Created".into(),
        _ => format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at)),
    }
}

pub(super) fn ps_fields(s: &State, trunc: bool) -> Vec<(&'static str, String)> {
    let mut cmd = s.command_line();
    if trunc && cmd.chars().count() > 20 {
        cmd = format!("{}…", cmd.chars().take(19).collect::<String>());
    }
    vec![
        (
            "ID",
            if trunc {
                s.short_id().to_string()
            } else {
                s.id.clone()
            },
        ),
        ("Image", s.config.image.clone()),
        ("Command", format!("\"{cmd}\"")),
        ("CreatedAt", s.created.clone()),
        ("RunningFor", crate::cli::output::since(&s.created)),
        ("Status", status_text(s)),
        ("State", s.status.clone()),
        (
            "Ports",
            s.config
                .ports
                .iter()
                .map(Port::display)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Names", s.name.clone()),
        ("Networks", s.config.network.clone()),
    ]
}

pub(crate) fn ps(g: &Global, a: PsArgs) -> anyhow::Result<u8> {
    let root = g.store_root();
    let list: Vec<State> = all(&root)
        .into_iter()
        .rev()
        .filter(|s| a.all || s.running())
        .collect();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for s in &list {
            writeln!(out, "{}", if a.no_trunc { &s.id } else { s.short_id() })?;
        }
        return Ok(0);
    }
    match a.format.as_deref() {
        Some("json") => {
            for s in &list {
                let m: serde_json::Map<String, serde_json::Value> = ps_fields(s, !a.no_trunc)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into()))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Object(m))?;
            }
        }
        Some(t) if t != "table" => {
            for s in &list {
                let mut line = t.replace("\\t", "\t");
                for (k, v) in ps_fields(s, !a.no_trunc) {
                    line = line.replace(&format!("{{{{.{k}}}}}"), &v);
                }
                writeln!(out, "{line}")?;
            }
        }
        _ => {
            let heads = [
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ];
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    let f = ps_fields(s, !a.no_trunc);
                    let get = |k: &str| f.iter().find(|(n, _)| *n == k).unwrap().1.clone();
                    vec![
                        get("ID"),
                        get("Image"),
                        get("Command"),
                        get("RunningFor"),
                        get("Status"),
                        get("Ports"),
                        get("Names"),
                    ]
                })
                .collect();
            let mut widths: Vec<usize> = heads.iter().map(|h| h.len()).collect();
            for r in &rows {
                for (i, c) in r.iter().enumerate() {
                    widths[i] = widths[i].max(c.chars().count());
                }
            }
            let fmt = |cells: Vec<String>| {
                let n = cells.len();
                cells
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| {
                        if i + 1 == n {
                            c
                        } else {
                            format!("{c:<w$}   ", w = widths[i])
                        }
                    })
                    .collect::<String>()
            };
            writeln!(
                out,
                "{}",
                fmt(heads.iter().map(|h| h.to_string()).collect())
            )?;
            for r in rows {
                writeln!(out, "{}", fmt(r))?;
            }
        }
    }
    Ok(0)
}
