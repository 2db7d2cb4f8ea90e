//! Host block devices for device-access tests.

use std::path::PathBuf;
use std::process::Command;

use crate::{assert_ok, stdout};

/// A loop device (a host block device) on a file of the test's that
/// holds `secret` at its start; detached, and the file removed, on drop.
pub struct LoopDevice {
    pub path: PathBuf,
    pub major: u64,
    pub minor: u64,
    _file: tempfile::NamedTempFile,
}

impl LoopDevice {
    pub fn new(secret: &str) -> LoopDevice {
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::fs::MetadataExt;
        let file = tempfile::Builder::new()
            .prefix("rrun-test-loop")
            .tempfile()
            .unwrap();
        let mut data = secret.as_bytes().to_vec();
        data.resize(1 << 20, 0);
        std::fs::write(file.path(), &data).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file.path())
            .output()
            .expect("losetup (util-linux)");
        assert_ok(&out, "losetup --find --show");
        let path = PathBuf::from(stdout(&out).trim());
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_block_device(), "{}", path.display());
        let rdev = meta.rdev();
        LoopDevice {
            path,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            _file: file,
        }
    }

    /// The file's first `n` bytes, read on the host.
    pub fn head(&self, n: usize) -> String {
        let data = std::fs::read(self._file.path()).unwrap();
        String::from_utf8_lossy(&data[..n]).into_owned()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).output();
    }
}

/// A shell script for a container (run as root with CAP_MKNOD): make a
/// node for the block device `major:minor` and for the kernel log
/// (`c 1 11`), then try to read and write them. One line per step:
/// `mknod-ok`/`mknod-refused`, `read:<the first 10 bytes>`/`read-refused`,
/// `write-ok`/`write-refused`, `kmsg-mknod-ok`/..., `kmsg-write-ok`/...
/// `dev`: an existing node to use instead of making one.
pub fn device_attack_script(major: u64, minor: u64, dev: Option<&str>) -> String {
    let node = match dev {
        Some(d) => format!("n={d}; echo mknod-ok"),
        None => format!(
            "n=/tmp/blk; mknod $n b {major} {minor} 2>/dev/null && echo mknod-ok || echo mknod-refused"
        ),
    };
    format!(
        "{node}
if head -c 10 $n >/tmp/head 2>/dev/null; then echo \"read:$(cat /tmp/head)\"; else echo read-refused; fi
if [ -b $n ] && printf W | dd of=$n bs=1 seek=100 conv=notrunc 2>/dev/null; then echo write-ok; else echo write-refused; fi
mknod /tmp/kmsg c 1 11 2>/dev/null && echo kmsg-mknod-ok || echo kmsg-mknod-refused
if [ -c /tmp/kmsg ] && echo rrun-test >/tmp/kmsg 2>/dev/null; then echo kmsg-write-ok; else echo kmsg-write-refused; fi
"
    )
}
