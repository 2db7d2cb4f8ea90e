//! rbox: parse the command line, run one verb (cli/), print. Errors are
//! one line on stderr (`rbox: …`) with Docker's exit status
//! (cli/status.rs).

// stdout through rbox::stdio (here and in the modules below): a reader that
// goes away (`rbox ps | head -1`) ends rbox quietly, as it ends Docker's CLI
macro_rules! print {
    ($($t:tt)*) => { rbox::stdio::print(format_args!($($t)*)) };
}
macro_rules! println {
    () => { rbox::stdio::print(format_args!("\n")) };
    ($($t:tt)*) => { rbox::stdio::print(format_args!("{}\n", format_args!($($t)*))) };
}
macro_rules! eprintln {
    ($($t:tt)*) => { rbox::stdio::eprint(format_args!("{}\n", format_args!($($t)*))) };
}
macro_rules! eprint {
    ($($t:tt)*) => { rbox::stdio::eprint(format_args!($($t)*)) };
}

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: cli::Cli = cli::status::parse(cli::alias::rewrite(std::env::args_os().collect()));
    let verb = cli.status_kind();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // stdout's reader went away (`rbox save | head -c 1`, `cp - `)
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(rbox::stdio::closed)
            });
            if broken_pipe && rbox::stdio::stdout_closed() {
                rbox::stdio::exit_closed();
            }
            // library errors already name their cause: print each once
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("rbox: {msg}");
            verb.status(&e)
        }
    }
}
