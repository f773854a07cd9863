//! A real HTTP/1.1 client (hyper's) for the server tests: one connection,
//! closed when dropped.
#![allow(dead_code)] // each user takes what it needs

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An HTTP/1.1 connection from a real client; dropping it closes the socket.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    connection: tokio::task::JoinHandle<()>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Client { sender, connection }
    }

    /// Sends `GET path` and reads the whole response.
    pub async fn get(&mut self, path: &str) -> (StatusCode, String) {
        self.get_with(path, &[]).await
    }

    /// Sends `GET path` with extra headers and reads the whole response.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
        let mut request = Request::get(path).header("host", "127.0.0.1");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).unwrap();
        self.sender.ready().await.unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The connection task owns the socket: aborting it closes the socket.
        self.connection.abort();
    }
}
