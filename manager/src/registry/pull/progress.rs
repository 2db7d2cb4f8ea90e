//! What a pull says as it goes, Docker's lines: progress bars on a
//! terminal, one line per step otherwise.

use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::image::NewLayer;
use crate::registry::client::short;

pub(super) struct Progress<'a> {
    out: &'a mut dyn Write,
    /// Some on a terminal
    bars: Option<MultiProgress>,
    done_style: Option<ProgressStyle>,
    bar_style: Option<ProgressStyle>,
}

impl<'a> Progress<'a> {
    pub(super) fn new(out: &'a mut dyn Write, bars: Option<MultiProgress>) -> Progress<'a> {
        let done_style = ProgressStyle::with_template("{prefix}: {msg}").ok();
        let bar_style =
            ProgressStyle::with_template("{prefix}: {msg:<14} [{bar:30}] {bytes}/{total_bytes}")
                .ok()
                .map(|s| s.progress_chars("=> "));
        Progress {
            out,
            bars,
            done_style,
            bar_style,
        }
    }

    /// A line of its own, before any bar is drawn.
    pub(super) fn line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }

    /// A line above the bars.
    pub(super) fn println(&mut self, line: String) {
        match &self.bars {
            Some(b) => {
                let _ = b.println(line);
            }
            None => {
                let _ = writeln!(self.out, "{line}");
            }
        }
    }

    /// A layer the store has.
    pub(super) fn already_exists(&mut self, short: &str) {
        match (&self.bars, &self.done_style) {
            (Some(b), Some(st)) => {
                let pb = b.add(ProgressBar::new(0).with_style(st.clone()));
                pb.set_prefix(short.to_string());
                pb.finish_with_message("Already exists");
            }
            _ => {
                let _ = writeln!(self.out, "{short}: Already exists");
            }
        }
    }

    /// A layer to download, of `size` bytes: its bar, on a terminal.
    pub(super) fn waiting(&mut self, short: &str, size: u64) -> Option<ProgressBar> {
        match (&self.bars, &self.bar_style) {
            (Some(b), Some(st)) => {
                let pb = b.add(ProgressBar::new(size).with_style(st.clone()));
                pb.set_prefix(short.to_string());
                pb.set_message("Waiting");
                Some(pb)
            }
            _ => {
                let _ = writeln!(self.out, "{short}: Pulling fs layer");
                None
            }
        }
    }

    pub(super) fn flush(&mut self) {
        let _ = self.out.flush();
    }

    /// A layer is in (its bar, on a terminal, says so itself).
    pub(super) fn complete(&mut self, layer: &NewLayer) {
        if layer.snapshot.is_some() && self.bars.is_none() {
            let _ = writeln!(self.out, "{}: Pull complete", short(&layer.blob_digest));
        }
    }

    /// The bars are done: the cursor is still on the last one.
    pub(super) fn end_bars(&mut self) {
        if self.bars.is_some() {
            let _ = writeln!(self.out);
        }
    }

    /// The last lines: the digest, and what became of the image.
    pub(super) fn status(&mut self, digest: &str, status: &str) {
        let _ = writeln!(self.out, "Digest: {digest}");
        let _ = writeln!(self.out, "Status: {status}");
    }
}
