//! `list`: the containers under the state root, as runc's table or JSON.

use std::path::Path;

use super::ListFormat;
use crate::container;

#[derive(clap::Args)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Only print ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn list(root: &Path, a: &ListArgs) -> anyhow::Result<()> {
    let states = container::list(root)?;
    if a.quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match a.format {
        ListFormat::Json => {
            let v: Vec<_> = states.iter().map(|s| s.oci(root)).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        ListFormat::Table => {
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    let o = s.oci(root);
                    [
                        o.id.to_string(),
                        o.pid.to_string(),
                        o.status,
                        o.bundle.display().to_string(),
                        o.created.to_string(),
                        if o.owner.is_empty() {
                            "root".into()
                        } else {
                            o.owner.to_string()
                        },
                    ]
                })
                .collect();
            print!("{}", table(&rows));
        }
    }
    Ok(())
}

/// runc's table: a header, columns as wide as their widest cell, three
/// spaces apart, no trailing blanks.
fn table(rows: &[[String; 6]]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(rows.iter()) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_aligned_like_runcs() {
        let row = ["c1", "42", "running", "/b", "2024-01-01T00:00:00Z", "root"].map(String::from);
        assert_eq!(
            table(&[row]),
            "ID   PID   STATUS    BUNDLE   CREATED                OWNER\n\
             c1   42    running   /b       2024-01-01T00:00:00Z   root\n"
        );
        assert_eq!(table(&[]), "ID   PID   STATUS   BUNDLE   CREATED   OWNER\n");
    }
}
