//! Direct one-to-one requests between two peers: a request-response protocol that carries opaque bytes.
//!
//! The market signs and encodes its own messages; this layer only frames them (a 4-byte big-endian length,
//! then the bytes), enforces the size limit in both directions and times requests out. A frame over the
//! limit closes the stream, so an oversized request never reaches the application.

use std::io;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::{request_response, PeerId, StreamProtocol};
use tokio::sync::mpsc;

/// The direct-message protocol of the market (version 1).
pub const DIRECT_PROTOCOL: StreamProtocol = StreamProtocol::new("/jobmesh/market/1");

/// Largest direct request or response, in bytes.
pub const MAX_DIRECT_MESSAGE: usize = 64 * 1024;

/// Length-prefixed byte frames of at most [`MAX_DIRECT_MESSAGE`] bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_DIRECT_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("direct message of {len} bytes exceeds the {MAX_DIRECT_MESSAGE}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8]) -> io::Result<()> {
    if data.len() > MAX_DIRECT_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "direct message of {} bytes exceeds the {MAX_DIRECT_MESSAGE}-byte limit",
                data.len()
            ),
        ));
    }
    io.write_all(&(data.len() as u32).to_be_bytes()).await?;
    io.write_all(data).await?;
    io.close().await
}

#[async_trait]
impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_frame(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_frame(io, &res).await
    }
}

/// A request another peer sent this node. Answer it with [`InboundRequest::respond`]; dropping it unanswered
/// closes the stream (the sender sees a failure at once rather than waiting for its timeout).
#[derive(Debug)]
pub struct InboundRequest {
    /// The peer that sent it (authenticated by the connection's noise handshake).
    pub peer: PeerId,
    /// Its bytes.
    pub data: Vec<u8>,
    pub(crate) id: u64,
    pub(crate) answers: mpsc::UnboundedSender<(u64, Option<Vec<u8>>)>,
    pub(crate) answered: bool,
}

impl InboundRequest {
    /// Sends the response.
    pub fn respond(mut self, data: Vec<u8>) {
        self.answered = true;
        let _ = self.answers.send((self.id, Some(data)));
    }
}

impl Drop for InboundRequest {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.answers.send((self.id, None));
        }
    }
}
