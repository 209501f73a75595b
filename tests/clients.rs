//! The Python client example (`examples/clients/python/`, PyPI `gmssl`) against the real
//! server over HTTPS: its calls, its member callback server as the home system of a routed
//! cloud signing, and its refusal of answers it cannot verify.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed set-up step is a failed test

#[path = "support/clients.rs"]
mod clients;
mod common;

fn python() -> clients::Example {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clients/python");
    // -B: no __pycache__ written into the source tree.
    let argv = |script: &str| vec!["python3".into(), "-B".into(), format!("{dir}/{script}")];
    clients::Example {
        client: argv("hutong_client.py"),
        member: argv("member_server.py"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_files_queries_verifies_and_serves_a_routed_cloud_signing() {
    clients::client_suite(&python()).await;
}
