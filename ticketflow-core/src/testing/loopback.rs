//! The loopback server every stand-in runs on.
#![allow(clippy::expect_used)]

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, Server};

/// A server on a free loopback port answering with `app`, stopped when its task is aborted:
/// the address as `http://127.0.0.1:<port>`, and the task.
pub(crate) async fn serve(app: impl Endpoint + 'static) -> (String, tokio::task::JoinHandle<()>) {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind loopback");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("a TCP address");
    let task = tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(app).await;
    });
    (format!("http://{addr}"), task)
}
