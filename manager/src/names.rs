//! Random ids and the names of containers and volumes.

use std::fs;

pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A Docker-like `adjective_scientist` name.
pub fn random_name() -> String {
    const A: [&str; 16] = [
        "brave",
        "calm",
        "eager",
        "fervent",
        "gallant",
        "happy",
        "jolly",
        "keen",
        "lucid",
        "modest",
        "nifty",
        "optimistic",
        "quirky",
        "serene",
        "tender",
        "vibrant",
    ];
    const B: [&str; 16] = [
        "curie", "darwin", "euler", "fermi", "galois", "hopper", "kepler", "lovelace", "meitner",
        "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
    ];
    let r = random_hex(2);
    let n = u16::from_str_radix(&r, 16).unwrap_or(0) as usize;
    format!("{}_{}", A[n % 16], B[(n / 16) % 16])
}
