//! The Java client example (`examples/clients/java/`, plain `javac` with Debian's
//! BouncyCastle `libbcprov-java`) against the real server over HTTPS: its calls, its member
//! callback server as the home system of a routed cloud signing, and its refusal of answers it
//! cannot verify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/clients.rs"]
mod clients;
mod common;

const BCPROV: &str = "/usr/share/java/bcprov.jar";

/// Compiles the example into `out` as a vendor would, with plain javac.
fn java(out: &std::path::Path) -> clients::Example {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/clients/java");
    let sources: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "java"))
        .collect();
    let status = std::process::Command::new("javac")
        .args(["-cp", BCPROV, "-d"])
        .arg(out)
        .args(&sources)
        .status()
        .expect("javac (openjdk-17-jdk-headless)");
    assert!(status.success(), "javac failed");
    let cp = format!("{}:{BCPROV}", out.display());
    let argv = |class: &str| vec!["java".into(), "-cp".into(), cp.clone(), class.into()];
    clients::Example {
        client: argv("HutongClient"),
        member: argv("MemberServer"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_example_files_queries_verifies_and_serves_a_routed_cloud_signing() {
    let out = tempfile::tempdir().unwrap();
    clients::client_suite(&java(out.path())).await;
}
