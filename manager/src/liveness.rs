//! A process told apart from a later one that got the same pid: its pid and
//! its start time (clock ticks after boot, /proc/PID/stat field 22). Shims
//! are recorded this way (supervisor.rs), and so is the owner of a claim
//! (claim.rs).

/// A process: its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Process {
    pub pid: i32,
    pub started: u64,
}

impl Process {
    /// The live process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<Process> {
        Some(Process {
            pid,
            started: start_time(pid)?,
        })
    }

    /// This process.
    pub fn this() -> Option<Process> {
        Process::of(std::process::id() as i32)
    }

    /// Whether that process still lives (not gone, not a zombie, not another
    /// process under the same pid).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.started)
    }

    /// As written in a file: `PID STARTED`.
    pub fn to_line(self) -> String {
        format!("{} {}", self.pid, self.started)
    }

    /// Read back from [`Process::to_line`]'s form.
    pub fn parse(line: &str) -> Option<Process> {
        let (pid, started) = line.trim().split_once(' ')?;
        Some(Process {
            pid: pid.parse().ok()?,
            started: started.parse().ok()?,
        })
    }
}

/// A live (not zombie) process's start time.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command may hold spaces and parentheses: fields follow the last ')'
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split(' ').collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    // field 22 overall is the 20th after the command
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_round_trips() {
        let me = Process::this().expect("this process");
        assert!(me.alive());
        assert_eq!(Process::parse(&me.to_line()), Some(me));
        let later = Process {
            started: me.started + 1,
            ..me
        };
        assert!(!later.alive(), "another start time is another process");
        assert_eq!(Process::parse("12"), None);
    }
}
