//! Names, files and ports that belong to one test, so tests running at once never meet.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
};

/// `pulse-test-<tag>-<uuid>`: a Redis key prefix (`STREAM_PREFIX`), a consumer or any other
/// name no other test, and no other run, uses.
pub fn unique_name(tag: &str) -> String {
    format!("pulse-test-{tag}-{}", uuid::Uuid::new_v4().simple())
}

/// A path of this test's own in the temporary folder, `<tmp>/pulse-test-<tag>-<uuid>.<extension>`
/// (nothing is created; the test removes what it writes there).
pub fn temp_path(tag: &str, extension: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.{extension}", unique_name(tag)))
}

/// A loopback address on a port that was free a moment ago, for a child process or a
/// configuration to listen on. In-process servers bind `127.0.0.1:0` instead, which cannot
/// race.
pub fn free_address() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_and_say_whose_they_are() {
        let (a, b) = (unique_name("group"), unique_name("group"));
        assert_ne!(a, b);
        assert!(a.starts_with("pulse-test-group-"));
        assert!(
            temp_path("eval", "jsonl")
                .to_string_lossy()
                .ends_with(".jsonl")
        );
    }
}
