//! `--format`: Go templates as Docker's CLI runs them, through the `gtmpl`
//! crate. Docker's habits on top of the engine: the `table` prefix (a
//! header row, then tab-separated cells aligned like its tabwriter), `\t`
//! and `\n` written as two characters mean tab and newline, `json` (Go's
//! encoder: `<`, `>`, `&` escaped), `join`, `split`, `upper`, `lower`,
//! `title`, `pad`, `truncate`, and values printed as Go's `%v` prints
//! them (`[sh -c echo]`, `map[a:b]`).
//!
//! gtmpl prints a list or a map in Rust's debug form, so every action that
//! prints is routed through `__v` (Go's `%v`), inserted before parsing.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context as _;
use gtmpl::{Context, Template};
use gtmpl_value::{FuncError, Number, Value};
use serde_json::Value as Json;

/// A parsed `--format`.
pub(crate) struct Format {
    tmpl: Template,
    /// `table ...`: a header row and aligned columns.
    table: bool,
}

/// How a command's `--format` value is to be read.
pub(crate) enum Kind {
    /// The command's default output.
    Default,
    /// `--format json`.
    Json,
    /// A Go template.
    Template(Box<Format>),
}

/// Reads `--format`: absent or `table` → default, `json` → JSON lines,
/// anything else a template.
pub(crate) fn kind(format: Option<&str>) -> anyhow::Result<Kind> {
    match format.map(str::trim) {
        None | Some("") | Some("table") => Ok(Kind::Default),
        Some("json") => Ok(Kind::Json),
        Some(f) => Ok(Kind::Template(Box::new(Format::parse(f)?))),
    }
}

impl Format {
    pub(crate) fn parse(format: &str) -> anyhow::Result<Format> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t', '{']) => (true, rest),
            _ => (false, format),
        };
        let body = if table { body.trim_matches(' ') } else { body };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut tmpl = Template::default();
        for (name, f) in FUNCS {
            tmpl.add_func(name, *f);
        }
        tmpl.parse(route_prints(&body))
            .map_err(|e| anyhow::anyhow!("template parsing error: {e}"))
            .with_context(|| format!("--format {format:?}"))?;
        Ok(Format { tmpl, table })
    }

    #[cfg(test)]
    pub(crate) fn is_table(&self) -> bool {
        self.table
    }

    /// One rendering of the template for `data`.
    pub(crate) fn render(&self, data: &Value) -> anyhow::Result<String> {
        self.tmpl
            .render(&Context::from(data.clone()))
            .map_err(|e| anyhow::anyhow!("template: executing: {e}"))
    }

    /// Renders every row (and, for `table`, the header made by rendering
    /// the template on `header`) to `out`, as Docker does.
    pub(crate) fn write_all(
        &self,
        out: &mut dyn Write,
        header: &Value,
        rows: &[Value],
    ) -> anyhow::Result<()> {
        if !self.table {
            for r in rows {
                writeln!(out, "{}", self.render(r)?)?;
            }
            return Ok(());
        }
        let split = |s: String| -> Vec<String> { s.split('\t').map(str::to_string).collect() };
        let head = split(self.render(header)?);
        let mut cells = Vec::new();
        for r in rows {
            for line in self.render(r)?.split('\n') {
                cells.push(split(line.to_string()));
            }
        }
        let cols = cells
            .iter()
            .map(Vec::len)
            .chain([head.len()])
            .max()
            .unwrap_or(1);
        let mut head: Vec<String> = head;
        head.resize(cols, String::new());
        for c in &mut cells {
            c.resize(cols, String::new());
        }
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        super::output::table(out, &head_ref, &cells)?;
        Ok(())
    }
}

/// Go's `{{ }}` actions that print get `| __v` appended; control actions,
/// comments and variable declarations are left alone.
fn route_prints(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 16);
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = find_close(after) else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = &after[..close];
        let (ltrim, body) = match inner.strip_prefix('-') {
            Some(b) if b.starts_with([' ', '\t', '\n']) => ("-", b),
            _ => ("", inner),
        };
        let (body, rtrim) = match body.strip_suffix('-') {
            Some(b) if b.ends_with([' ', '\t', '\n']) => (b, "-"),
            _ => (body, ""),
        };
        let word = body.trim_start();
        let keyword = [
            "if", "else", "end", "range", "with", "define", "template", "block", "break",
            "continue",
        ]
        .iter()
        .any(|k| {
            word.strip_prefix(k)
                .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\n']))
        });
        let declares = word.starts_with('$')
            && word
                .split_whitespace()
                .nth(1)
                .is_some_and(|t| t == ":=" || t == "=");
        let comment = word.starts_with("/*");
        if keyword || declares || comment || word.trim().is_empty() {
            out.push_str("{{");
            out.push_str(inner);
        } else {
            out.push_str("{{");
            out.push_str(ltrim);
            out.push_str(" __v (");
            out.push_str(body);
            out.push(')');
            out.push_str(if rtrim.is_empty() { "" } else { " -" });
        }
        out.push_str("}}");
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' || b[i] == b'\'' {
                    quote = Some(b[i]);
                } else if b[i..].starts_with(b"}}") {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

type Func = fn(&[Value]) -> Result<Value, FuncError>;

const FUNCS: &[(&str, Func)] = &[
    ("__v", go_v),
    ("json", json_fn),
    ("join", join_fn),
    ("split", split_fn),
    ("upper", upper_fn),
    ("lower", lower_fn),
    ("title", title_fn),
    ("pad", pad_fn),
    ("truncate", truncate_fn),
];

fn one(args: &[Value], name: &str) -> Result<Value, FuncError> {
    match args {
        [v] => Ok(v.clone()),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn string_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => go_format(other),
    }
}

fn go_v(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(go_format(&one(args, "__v")?)))
}

/// Docker's `json` template function: its encoder has HTML escaping off.
fn json_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        serde_json::to_string(&to_json(&one(args, "json")?)).unwrap_or_default(),
    ))
}

fn join_fn(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [Value::Array(a), sep] => Ok(Value::String(
            a.iter()
                .map(string_arg)
                .collect::<Vec<_>>()
                .join(&string_arg(sep)),
        )),
        [Value::Nil | Value::NoValue, _] => Ok(Value::String(String::new())),
        _ => Err(FuncError::Generic(
            "join: expects a list and a separator".into(),
        )),
    }
}

fn split_fn(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [s, sep] => Ok(Value::Array(
            string_arg(s)
                .split(string_arg(sep).as_str())
                .map(|p| Value::String(p.to_string()))
                .collect(),
        )),
        _ => Err(FuncError::ExactlyXArgs("split".into(), 2)),
    }
}

fn upper_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        string_arg(&one(args, "upper")?).to_uppercase(),
    ))
}

fn lower_fn(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(
        string_arg(&one(args, "lower")?).to_lowercase(),
    ))
}

fn title_fn(args: &[Value]) -> Result<Value, FuncError> {
    let s = string_arg(&one(args, "title")?);
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Value::String(out))
}

fn int_arg(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n as usize),
        _ => None,
    }
}

fn pad_fn(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [s, l, r] => {
            let (Some(l), Some(r)) = (int_arg(l), int_arg(r)) else {
                return Err(FuncError::Generic(
                    "pad: expects a string and two numbers".into(),
                ));
            };
            Ok(Value::String(format!(
                "{}{}{}",
                " ".repeat(l),
                string_arg(s),
                " ".repeat(r)
            )))
        }
        _ => Err(FuncError::ExactlyXArgs("pad".into(), 3)),
    }
}

fn truncate_fn(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [s, n] => {
            let Some(n) = int_arg(n) else {
                return Err(FuncError::Generic("truncate: expects a number".into()));
            };
            Ok(Value::String(string_arg(s).chars().take(n).collect()))
        }
        _ => Err(FuncError::ExactlyXArgs("truncate".into(), 2)),
    }
}

/// Go's `%v`.
pub(crate) fn go_format(v: &Value) -> String {
    match v {
        Value::NoValue => "<no value>".into(),
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_format).collect::<Vec<_>>().join(" ")
        ),
        // A struct: its field values in order, `{layers [sha256:...]}`.
        Value::Object(m) => {
            let parts: Vec<String> = fields(m).into_iter().map(|(_, v)| go_format(v)).collect();
            format!("{{{}}}", parts.join(" "))
        }
        Value::Map(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let parts: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Function(_) => "<func>".into(),
    }
}

/// Where a struct keeps its field order (gtmpl's objects are hash maps).
/// Not an identifier: no template can name it as a field.
const ORDER: &str = "#order";

/// Docker's fields that are Go maps (printed `map[k:v]`, keys sorted in
/// JSON); every other JSON object is a Go struct (fields in order).
const GO_MAPS: &[&str] = &["Labels", "Volumes", "ExposedPorts", "Data"];

/// A struct's fields in their order (the hidden order key left out).
fn fields(m: &std::collections::HashMap<String, Value>) -> Vec<(&String, &Value)> {
    fields_for(m, false)
}

/// Like [`fields`]; for JSON, the `omitempty` fields (marked `?` in the
/// order) that are empty are left out.
fn fields_for(m: &std::collections::HashMap<String, Value>, json: bool) -> Vec<(&String, &Value)> {
    match m.get(ORDER) {
        Some(Value::Array(order)) => order
            .iter()
            .filter_map(|k| match k {
                Value::String(k) => {
                    let (omit, k) = match k.strip_prefix('?') {
                        Some(k) => (true, k),
                        None => (false, k.as_str()),
                    };
                    m.get_key_value(k)
                        .filter(|(_, v)| !(json && omit && is_empty(v)))
                }
                _ => None,
            })
            .collect(),
        _ => {
            let sorted: BTreeMap<&String, &Value> = m.iter().filter(|(k, _)| *k != ORDER).collect();
            sorted.into_iter().collect()
        }
    }
}

/// Go's `json.Marshal` text (what `--format json` prints): HTML-sensitive
/// characters escaped.
pub(crate) fn go_json(v: &Json) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A template value back to JSON: a struct's fields in order, a map's
/// keys sorted (as Go's encoder writes them).
fn to_json(v: &Value) -> Json {
    match v {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_u64() {
                Json::from(i)
            } else if let Some(i) = n.as_i64() {
                Json::from(i)
            } else {
                n.as_f64().map_or(Json::Null, Json::from)
            }
        }
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Object(m) | Value::Map(m) => Json::Object(
            fields_for(m, true)
                .into_iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

/// JSON as template data, shaped as Docker's Go values: objects are
/// structs (a missing field is an error; `%v` prints the values in order;
/// `json` keeps the order) except under the [`GO_MAPS`] keys, which are
/// maps (a missing key prints `<no value>`; keys sorted).
pub(crate) fn from_json(v: &Json) -> Value {
    convert(v, false)
}

fn convert(v: &Json, go_map: bool) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::String(s.clone()),
        Json::Number(n) => {
            if let Some(i) = n.as_u64() {
                Value::Number(Number::from(i))
            } else if let Some(i) = n.as_i64() {
                Value::Number(Number::from(i))
            } else {
                Value::Number(Number::from(n.as_f64().unwrap_or(0.0)))
            }
        }
        Json::Array(a) => Value::Array(a.iter().map(|v| convert(v, false)).collect()),
        Json::Object(m) if go_map => Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), convert(v, false)))
                .collect(),
        ),
        Json::Object(m) => {
            let mut o: std::collections::HashMap<String, Value> = m
                .iter()
                .map(|(k, v)| (k.clone(), convert(v, GO_MAPS.contains(&k.as_str()))))
                .collect();
            let order = m.keys().map(|k| Value::String(k.clone())).collect();
            o.insert(ORDER.into(), Value::Array(order));
            Value::Object(o)
        }
    }
}

/// Go's "empty" for `omitempty`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Object(_) | Value::Function(_) => false,
    }
}

/// Marks every field of the struct `v` `omitempty`.
pub(crate) fn omit_empty(v: &mut Value) {
    if let Value::Object(m) = v {
        if let Some(Value::Array(order)) = m.get_mut(ORDER) {
            for k in order.iter_mut() {
                if let Value::String(s) = k {
                    if !s.starts_with('?') {
                        s.insert(0, '?');
                    }
                }
            }
        }
    }
}

/// JSON as Docker's CLI sees it when its typed object lacks a field: Go
/// maps all the way down; null prints `<no value>`.
pub(crate) fn raw(v: &Json) -> Value {
    match v {
        Json::Null => Value::NoValue,
        Json::Array(a) => Value::Array(a.iter().map(raw).collect()),
        Json::Object(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), raw(v))).collect()),
        other => from_json(other),
    }
}

/// A record (a row of a listing, an inspected object): a struct.
pub(crate) fn record(v: &Json) -> Value {
    from_json(v)
}

/// Docker's `--format json` for list commands: one `{{json .}}` per row.
pub(crate) fn write_json_lines(out: &mut dyn Write, rows: &[Json]) -> anyhow::Result<()> {
    for r in rows {
        writeln!(out, "{}", go_json(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(f: &str, v: Json) -> String {
        Format::parse(f).unwrap().render(&record(&v)).unwrap()
    }

    #[test]
    fn fields_lists_and_maps_print_as_go() {
        let v = json!({"Repository": "busybox", "Tag": "1.35",
            "Config": {"Cmd": ["sh", "-c", "echo a > b"], "Labels": {"b": "2", "a": "1"}, "Entrypoint": null}});
        assert_eq!(
            render("{{.Repository}}:{{.Tag}}", v.clone()),
            "busybox:1.35"
        );
        assert_eq!(render("{{.Config.Cmd}}", v.clone()), "[sh -c echo a > b]");
        assert_eq!(render("{{.Config.Labels}}", v.clone()), "map[a:1 b:2]");
        assert_eq!(
            render("{{json .Config.Cmd}}", v.clone()),
            r#"["sh","-c","echo a > b"]"#
        );
        assert_eq!(render("{{json .Config.Entrypoint}}", v.clone()), "null");
        assert_eq!(
            render("{{range .Config.Cmd}}<{{.}}>{{end}}", v.clone()),
            "<sh><-c><echo a > b>"
        );
        assert_eq!(
            render(
                "{{range $i, $c := .Config.Cmd}}{{$i}}={{$c}} {{end}}",
                v.clone()
            ),
            "0=sh 1=-c 2=echo a > b "
        );
        assert_eq!(
            render("{{join .Config.Cmd \",\"}}", v.clone()),
            "sh,-c,echo a > b"
        );
        assert_eq!(render("{{upper .Tag}}", v.clone()), "1.35");
        assert_eq!(render("{{if .Tag}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(render(" {{- .Tag -}} \\n", v.clone()), "1.35");
        assert_eq!(
            render("{{json .Config}}", v.clone()),
            r#"{"Cmd":["sh","-c","echo a > b"],"Labels":{"a":"1","b":"2"},"Entrypoint":null}"#
        );
        assert_eq!(
            render("{{.Config}}", v.clone()),
            "{[sh -c echo a > b] map[a:1 b:2] <nil>}"
        );
        assert!(Format::parse("{{.Tag").is_err());
        assert!(Format::parse("{{.Nope}}")
            .unwrap()
            .render(&record(&v))
            .is_err());
    }

    #[test]
    fn table_has_a_header_and_aligned_columns() {
        let f = Format::parse("table {{.Repository}}\\t{{.Tag}}").unwrap();
        assert!(f.is_table());
        let header = record(&json!({"Repository": "REPOSITORY", "Tag": "TAG"}));
        let rows = vec![record(&json!({"Repository": "busybox", "Tag": "1.35"}))];
        let mut out = Vec::new();
        f.write_all(&mut out, &header, &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "REPOSITORY   TAG\nbusybox      1.35\n"
        );
    }
}
