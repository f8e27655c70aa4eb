//! `strata image explain IMAGE`: where an image's bytes come from, and the
//! one-line summary that closes `strata build`.

use std::io::Write;

use anyhow::Context as _;
use strata_engine::explain::analyze::{Explanation, PathSize};
use strata_store::Store;

use super::output::{human_size, table};
use super::Global;

#[derive(clap::Args, Debug)]
pub(crate) struct ExplainArgs {
    pub image: String,
    /// Output format: text, or json
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// How many directories and files to show per layer (and per waste)
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

/// A history `created_by` as a Dockerfile step: without BuildKit's
/// `# buildkit` marker and the shell prefix of RUN.
pub(crate) fn step_text(created_by: &str) -> String {
    let s = created_by.trim();
    let s = s.strip_suffix("# buildkit").unwrap_or(s).trim_end();
    let s = s
        .strip_prefix("/bin/sh -c #(nop) ")
        .map(str::trim_start)
        .unwrap_or(s);
    match s.strip_prefix("/bin/sh -c ") {
        Some(cmd) if !cmd.starts_with("RUN") => format!("RUN {cmd}"),
        Some(cmd) => cmd.to_string(),
        None => s.to_string(),
    }
}

fn step_or(s: &Option<String>) -> String {
    s.as_deref()
        .map(step_text)
        .unwrap_or_else(|| "(no history: made outside a Dockerfile, e.g. import)".into())
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    // 99.6% is not all of it: one decimal near the ends.
    if (p > 0.0 && p < 1.0) || (p > 99.0 && part < whole) {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

fn list(v: &[PathSize]) -> String {
    v.iter()
        .map(|p| format!("{} {}", p.path, human_size(p.bytes)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(out: &mut dyn Write, name: &str, e: &Explanation) -> std::io::Result<()> {
    let id = e.id.trim_start_matches("sha256:");
    writeln!(
        out,
        "{name} ({}): {} in {} layers, base {} ({}), wasted {}",
        &id[..12.min(id.len())],
        human_size(e.size),
        e.layers.len(),
        human_size(e.base_size),
        pct(e.base_size, e.size),
        human_size(e.wasted_bytes)
    )?;
    writeln!(out, "\nBy layer (the step that made it):")?;
    let rows: Vec<Vec<String>> = e
        .layers
        .iter()
        .map(|l| {
            vec![
                l.index.to_string(),
                human_size(l.size),
                pct(l.size, e.size),
                if l.base { "base".into() } else { String::new() },
                super::output::ellipsis(&step_or(&l.step), 70),
            ]
        })
        .collect();
    table(out, &["LAYER", "SIZE", "SHARE", "FROM", "STEP"], &rows)?;
    writeln!(out, "\nLargest per layer:")?;
    for l in e.layers.iter().filter(|l| l.files > 0) {
        writeln!(out, "  layer {} ({} files)", l.index, l.files)?;
        writeln!(out, "    dirs:  {}", list(&l.top_dirs))?;
        writeln!(out, "    files: {}", list(&l.top_files))?;
    }
    if e.wasted.is_empty() {
        writeln!(
            out,
            "\nWasted: none (no later layer deletes or overwrites a file)"
        )?;
    } else {
        writeln!(
            out,
            "\nWasted: {} (files a later layer deleted or overwrote; they still ship in the earlier layer):",
            human_size(e.wasted_bytes)
        )?;
        for w in &e.wasted {
            writeln!(
                out,
                "  {} in {} file(s) added by layer {} ({}), {} by layer {} ({})",
                human_size(w.bytes),
                w.files,
                w.added_by_layer,
                step_or(&w.added_by),
                w.how,
                w.wasted_by_layer,
                step_or(&w.wasted_by)
            )?;
            writeln!(out, "    {}", list(&w.top))?;
        }
    }
    match &e.stages {
        None => writeln!(
            out,
            "\nStages: not recorded (only images strata builds carry a build record)"
        )?,
        Some(st) => {
            writeln!(out, "\nStages (final: {}):", st.target)?;
            let rows: Vec<Vec<String>> = st
                .stages
                .iter()
                .map(|s| {
                    vec![
                        s.record.name.clone(),
                        s.record.base.clone(),
                        human_size(s.record.base_size),
                        human_size(s.record.size),
                        human_size(s.record.total()),
                        if s.in_final {
                            "final".into()
                        } else {
                            human_size(s.taken)
                        },
                        if s.in_final {
                            "-".into()
                        } else {
                            human_size(s.left_behind)
                        },
                    ]
                })
                .collect();
            table(
                out,
                &[
                    "STAGE",
                    "BASE",
                    "BASE SIZE",
                    "OWN LAYERS",
                    "TOTAL",
                    "TAKEN",
                    "LEFT BEHIND",
                ],
                &rows,
            )?;
            for c in &st.copies {
                writeln!(
                    out,
                    "  {} took {} from {}: {} -> {} (line {})",
                    c.stage,
                    human_size(c.bytes),
                    c.from,
                    c.paths.join(" "),
                    c.dest,
                    c.line
                )?;
            }
        }
    }
    Ok(())
}

pub(crate) fn run(g: &Global, a: ExplainArgs) -> anyhow::Result<u8> {
    let store = Store::open(&g.store_root())
        .with_context(|| format!("opening the store at {}", g.store_root().display()))?;
    let e = strata_engine::explain::explain_image(&store, &a.image, a.top)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.format == "json" {
        serde_json::to_writer_pretty(&mut out, &e)?;
        writeln!(out)?;
    } else {
        render(&mut out, &a.image, &e)?;
    }
    Ok(0)
}

/// The line that closes a build: final size, base share, largest step.
pub(crate) fn build_summary(store: &Store, image: &strata_oci::Digest) -> Option<String> {
    let s = strata_engine::explain::summary(store, image).ok()?;
    let mut line = format!("image size {}", human_size(s.size));
    if let Some(b) = &s.base {
        line.push_str(&format!(
            ", base {b} {} ({})",
            human_size(s.base_size),
            pct(s.base_size, s.size)
        ));
    }
    if let Some((step, bytes)) = &s.largest_step {
        line.push_str(&format!(
            ", largest step {} ({})",
            super::output::ellipsis(&step_text(step), 60),
            human_size(*bytes)
        ));
    }
    line.push_str(" (strata image explain for more)");
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_as_dockerfile_lines() {
        assert_eq!(
            step_text("RUN /bin/sh -c go build # buildkit"),
            "RUN /bin/sh -c go build"
        );
        assert_eq!(
            step_text("COPY --from=build /app/app . # buildkit"),
            "COPY --from=build /app/app ."
        );
        assert_eq!(
            step_text("/bin/sh -c #(nop) ADD file:abc in / "),
            "ADD file:abc in /"
        );
        assert_eq!(step_text("/bin/sh -c apk add x"), "RUN apk add x");
    }
}
