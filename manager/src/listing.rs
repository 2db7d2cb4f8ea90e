//! `ps` and `images` as Docker's formatter prints them: each row is an
//! object of Docker's fields (strings, as `{{json .}}` shows them),
//! printed through `--format`: a template per row, `table TEMPLATE` for a
//! header of Docker's column titles and tabwriter columns, `table` for
//! the default table, `json` for one JSON object a line. `\t` and `\n`
//! in a format are a tab and a newline. `--filter` (filter.rs) picks the
//! rows.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::container::{self, Container, ContainerError, LiveStatus, NetMode};
use crate::filter::Filters;
use crate::format::{
    ellipsis, go_quote, go_time, human_since, human_size, seconds_since, tabwrite,
};
use crate::image::{self, short_id, ImageError};
use crate::mounts::Source;
use crate::store::Store;
use crate::template::{Template, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("template: can't evaluate field {field} ({verb} has {known})")]
    UnknownField {
        field: String,
        verb: &'static str,
        known: String,
    },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub type Result<T> = std::result::Result<T, ListError>;

/// `ps`'s fields and their column titles.
pub const PS_FIELDS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Label", "LABEL"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
pub const PS_TABLE_SIZE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}";

/// `images`'s fields and their column titles.
pub const IMAGE_FIELDS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

pub const IMAGES_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
pub const IMAGES_TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// One row: its fields, and what its methods (`.Label "k"`) return.
#[derive(Debug, Clone)]
pub struct Row {
    pub fields: Value,
    pub methods: Value,
}

/// A parsed `--format`.
#[derive(Debug, Clone)]
pub enum ListFormat {
    /// a header row, then the rows, aligned
    Table(Template),
    /// each row on its own
    Lines(Template),
}

impl ListFormat {
    /// `format`: the flag's value (none: `default`, a `table …` format);
    /// `verb` and `fields`: for the error about an unknown field.
    pub fn parse(
        format: Option<&str>,
        default: &str,
        verb: &'static str,
        fields: &[(&str, &str)],
    ) -> Result<ListFormat> {
        let f = match format.map(str::trim) {
            None | Some("table") => default,
            Some("json") => "{{json .}}",
            Some(f) => f,
        };
        let (table, body) = match f.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, f),
        };
        let body = body.trim().replace("\\t", "\t").replace("\\n", "\n");
        let template = Template::parse(&body)?;
        if let Some(field) = template
            .fields()
            .into_iter()
            .find(|f| !fields.iter().any(|(name, _)| name == f))
        {
            return Err(ListError::UnknownField {
                field: field.to_string(),
                verb,
                known: fields
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(if table {
            ListFormat::Table(template)
        } else {
            ListFormat::Lines(template)
        })
    }

    /// The output for `rows`, each ending in a newline.
    pub fn render(&self, fields: &[(&str, &str)], rows: &[Row]) -> String {
        match self {
            ListFormat::Lines(t) => rows
                .iter()
                .map(|r| t.render_with(&r.fields, &r.methods) + "\n")
                .collect(),
            ListFormat::Table(t) => {
                let titles: Map<String, Value> = fields
                    .iter()
                    .map(|(n, title)| (n.to_string(), json!(title)))
                    .collect();
                let mut text = t.render_header(&Value::Object(titles)) + "\n";
                for r in rows {
                    text.push_str(&t.render_with(&r.fields, &r.methods));
                    text.push('\n');
                }
                tabwrite(&text)
            }
        }
    }
}

/// What `ps` lists.
#[derive(Debug, Clone, Default)]
pub struct PsOptions {
    pub all: bool,
    pub no_trunc: bool,
    /// `-s`: the writable layer's size (and the image's)
    pub size: bool,
    pub filters: Filters,
}

/// Docker's STATUS: `Up 5 minutes`, `Up 2 seconds (Paused)`, `Exited (3)
/// 1 hour ago`, `Created`.
pub fn status_text(c: &Container, status: LiveStatus) -> String {
    let up = || {
        c.state
            .started_at
            .as_deref()
            .map(|s| human_since(seconds_since(s)).replace(" ago", ""))
            .unwrap_or_default()
    };
    match status {
        LiveStatus::Running => format!("Up {}", up()),
        LiveStatus::Paused => format!("Up {} (Paused)", up()),
        LiveStatus::Exited => format!(
            "Exited ({}) {}",
            c.state.exit_code,
            c.state
                .finished_at
                .as_deref()
                .map(|s| human_since(seconds_since(s)))
                .unwrap_or_default()
        ),
        LiveStatus::Created => "Created".into(),
    }
}

fn network_names(c: &Container) -> Vec<String> {
    match c.spec.net.clone().unwrap_or(NetMode::Bridge) {
        NetMode::Container(_) => Vec::new(),
        m => vec![m.name()],
    }
}

fn created(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s).ok()
}

/// Does `c` (with live status `status`) pass the filters?
fn container_matches(store: &Store, f: &Filters, c: &Container, status: LiveStatus) -> bool {
    let labels = c.spec.run_config().labels;
    let started = c.state.started_at.is_some();
    let ancestor =
        |a: &str| c.spec.image == a || store.resolve(a).is_ok_and(|img| img.id == c.image_id);
    let other_created = |what: &str| {
        container::find(store, what)
            .ok()
            .and_then(|o| created(&o.created))
    };
    let mine = created(&c.created);
    f.any("id", |v| c.id.starts_with(v))
        && f.name_matches(&c.name)
        && f.any("status", |v| v == status.as_str())
        && f.labels_match(&labels)
        && f.any("ancestor", ancestor)
        && f.any("exited", |v| {
            status == LiveStatus::Exited && started && v.parse::<i32>() == Ok(c.state.exit_code)
        })
        && f.any("network", |v| {
            let id = match c.spec.net.clone().unwrap_or(NetMode::Bridge) {
                NetMode::User(n) => crate::net::usernet::find(store, &n)
                    .map(|n| n.id)
                    .unwrap_or_default(),
                m => crate::net::usernet::predefined_id(&m.name()),
            };
            network_names(c).iter().any(|n| n == v) || (!v.is_empty() && id.starts_with(v))
        })
        && f.any("publish", |v| {
            let (port, proto) = v.split_once('/').unwrap_or((v, "tcp"));
            c.spec
                .ports
                .iter()
                .chain(&c.state.ports)
                .any(|p| p.container_port.to_string() == port && p.protocol.as_str() == proto)
        })
        && f.any("volume", |v| {
            c.spec.mounts.iter().any(|m| {
                m.target.as_os_str() == v
                    || match &m.source {
                        Source::Volume(Some(n)) => n == v,
                        Source::Bind(p) => p.as_os_str() == v,
                        _ => false,
                    }
            })
        })
        && f.any(
            "before",
            |v| matches!((mine, other_created(v)), (Some(a), Some(b)) if a < b),
        )
        && f.any(
            "since",
            |v| matches!((mine, other_created(v)), (Some(a), Some(b)) if a > b),
        )
}

/// The containers `ps` lists, newest first, with their live status. A
/// `status=` filter lists stopped containers too (Docker's rule); otherwise
/// only running and paused ones unless `all`.
pub fn select_containers(
    store: &Store,
    all: bool,
    filters: &Filters,
) -> Result<Vec<(Container, LiveStatus)>> {
    container::reconcile(store)?;
    let all = all || filters.has("status");
    let mut out = Vec::new();
    for c in container::list(store)? {
        let status = container::live_status(&c);
        if !all && !status.is_up() {
            continue;
        }
        if container_matches(store, filters, &c, status) {
            out.push((c, status));
        }
    }
    Ok(out)
}

/// `ps`'s rows: [`select_containers`]'s, formatted.
pub fn containers(store: &Store, o: &PsOptions) -> Result<Vec<Row>> {
    Ok(select_containers(store, o.all, &o.filters)?
        .iter()
        .map(|(c, status)| container_row(store, c, *status, o))
        .collect())
}

fn container_row(store: &Store, c: &Container, status: LiveStatus, o: &PsOptions) -> Row {
    let trunc = !o.no_trunc;
    let config = c.spec.run_config();
    let mut command = config.command();
    if trunc {
        command = ellipsis(&command, 20);
    }
    let ports = if status == LiveStatus::Running {
        c.state
            .ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        String::new()
    };
    let mounts: Vec<String> = c
        .spec
        .mounts
        .iter()
        .filter_map(|m| match &m.source {
            Source::Volume(Some(n)) => Some(n.clone()),
            Source::Bind(p) => Some(p.display().to_string()),
            _ => None,
        })
        .map(|n| if trunc { ellipsis(&n, 15) } else { n })
        .collect();
    let volumes = c
        .spec
        .mounts
        .iter()
        .filter(|m| matches!(m.source, Source::Volume(_)))
        .count();
    let size = if o.size {
        let rw = crate::system::dir_size(&crate::bundle::container_dir(store, &c.id).join("upper"));
        let image = store
            .image(&c.image_id)
            .ok()
            .flatten()
            .map_or(0, |i| i.size);
        format!("{} (virtual {})", human_size(rw), human_size(rw + image))
    } else {
        "0B".into()
    };
    let labels: Vec<String> = config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Row {
        fields: json!({
            "Command": go_quote(&command),
            "CreatedAt": go_time(&c.created),
            "ID": if trunc { short_id(&c.id).to_string() } else { c.id.clone() },
            "Image": c.spec.image,
            "Labels": labels.join(","),
            "LocalVolumes": volumes.to_string(),
            "Mounts": mounts.join(","),
            "Names": c.name,
            "Networks": network_names(c).join(","),
            "Ports": ports,
            "RunningFor": human_since(seconds_since(&c.created)),
            "Size": size,
            "State": status.as_str(),
            "Status": status_text(c, status),
        }),
        methods: json!({ "Label": config.labels }),
    }
}

/// What `images` lists.
#[derive(Debug, Clone, Default)]
pub struct ImagesOptions {
    pub no_trunc: bool,
    pub filters: Filters,
}

/// The lines of `images` the filters pick: one per tag, or one `<none>`
/// line per untagged image.
pub fn select_images(store: &Store, f: &Filters) -> Result<Vec<image::ImageLine>> {
    let created_of = |what: &str| store.resolve(what).ok().and_then(|i| created(&i.created));
    let before: Vec<_> = f.get("before").iter().map(|v| created_of(v)).collect();
    let since: Vec<_> = f.get("since").iter().map(|v| created_of(v)).collect();
    let mut labels_of: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut out = Vec::new();
    for l in image::list(store)? {
        let tagged = store.refs(&l.id)?.iter().any(|r| r.tag.is_some());
        if f.dangling().is_some_and(|d| d == tagged) {
            continue;
        }
        if !f.reference_matches(&l.repository, &l.tag) {
            continue;
        }
        let mine = created(&l.created);
        let older = |b: &Option<_>| matches!((mine, b), (Some(a), Some(b)) if a < *b);
        let newer = |b: &Option<_>| matches!((mine, b), (Some(a), Some(b)) if a > *b);
        if !(before.is_empty() || before.iter().any(older))
            || !(since.is_empty() || since.iter().any(newer))
        {
            continue;
        }
        if !labels_of.contains_key(&l.id) {
            let labels = image::inspect(store, &l.id)?["Config"]["Labels"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            labels_of.insert(l.id.clone(), labels);
        }
        if f.labels_match(&labels_of[&l.id]) {
            out.push(l);
        }
    }
    Ok(out)
}

/// `images`'s rows: [`select_images`]'s lines, formatted.
pub fn images(store: &Store, o: &ImagesOptions) -> Result<Vec<Row>> {
    Ok(select_images(store, &o.filters)?
        .into_iter()
        .map(|l| {
            let id = if o.no_trunc {
                l.id.clone()
            } else {
                short_id(&l.id).to_string()
            };
            Row {
                fields: json!({
                    "Containers": "N/A",
                    "CreatedAt": go_time(&l.created),
                    "CreatedSince": human_since(seconds_since(&l.created)),
                    "Digest": l.digest,
                    "ID": id,
                    "Repository": l.repository,
                    "SharedSize": "N/A",
                    "Size": human_size(l.size),
                    "Tag": l.tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": human_size(l.size),
                }),
                methods: json!({}),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                fields: json!({"ID": "0123456789ab", "Names": "web", "State": "running"}),
                methods: json!({"Label": {"tier": "front"}}),
            },
            Row {
                fields: json!({"ID": "ba9876543210", "Names": "db", "State": "exited"}),
                methods: json!({"Label": {}}),
            },
        ]
    }

    fn out(format: Option<&str>) -> String {
        ListFormat::parse(format, PS_TABLE, "ps", PS_FIELDS)
            .unwrap()
            .render(PS_FIELDS, &rows())
    }

    #[test]
    fn table_formats_have_dockers_header() {
        assert_eq!(
            out(Some(r"table {{.ID}}\t{{.Names}}")),
            "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   db\n"
        );
        assert_eq!(
            out(Some(r#"table {{.Names}}\t{{.Label "tier"}}"#)),
            "NAMES     LABEL\nweb       front\ndb        \n"
        );
        let t = out(Some("table"));
        assert!(t.starts_with("CONTAINER ID   IMAGE "), "{t}");
        assert_eq!(out(None), t);
    }

    #[test]
    fn line_formats_json_and_escapes() {
        assert_eq!(
            out(Some(r"{{.Names}}\t{{.State}}")),
            "web\trunning\ndb\texited\n"
        );
        assert_eq!(out(Some(r"{{.Names}}\n")), "web\n\ndb\n\n");
        let j = out(Some("json"));
        let first: Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
        assert_eq!(first["Names"], "web");
        assert_eq!(out(Some("{{json .}}")), j);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = ListFormat::parse(Some("{{.Nope}}"), PS_TABLE, "ps", PS_FIELDS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Nope") && e.contains("Names"), "{e}");
        assert!(ListFormat::parse(
            Some(IMAGES_TABLE_DIGESTS),
            IMAGES_TABLE,
            "images",
            IMAGE_FIELDS
        )
        .is_ok());
        assert!(ListFormat::parse(Some(PS_TABLE_SIZE), PS_TABLE, "ps", PS_FIELDS).is_ok());
    }
}
