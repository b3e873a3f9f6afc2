//! `infty-mcp-test-server [--counter PATH] [--fail]`: the test MCP server over stdio.
//!
//! `--fail` writes a complaint to standard error and exits before the handshake, like a
//! server that cannot start. Only for infty's tests.

use infty_mcp::test_server::TestServer;
use rmcp::ServiceExt;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut counter = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--counter" => counter = args.next().map(std::path::PathBuf::from),
            "--fail" => {
                eprintln!("test server: cannot open its database");
                std::process::exit(2);
            }
            other => {
                eprintln!("test server: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    match TestServer::new(counter)
        .serve(rmcp::transport::stdio())
        .await
    {
        Ok(service) => {
            let _ = service.waiting().await;
        }
        Err(error) => {
            eprintln!("test server: {error}");
            std::process::exit(1);
        }
    }
}
