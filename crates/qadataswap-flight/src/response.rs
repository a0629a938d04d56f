//! `DoGet`'s response written by hand, so that frame bodies go from the mapping to the socket without a copy in
//! between.
//!
//! tonic's codec encodes each message into one buffer: every body would be copied (into freshly allocated, freshly
//! faulted memory) before HTTP/2 sends it. Here each `FlightData` becomes two pieces of the HTTP/2 body: a small
//! owned head (the gRPC length prefix, the protobuf keys and lengths, `data_header` and `app_metadata`) and the body
//! itself, the slice of the slot, which holds the frame's lease until HTTP/2 has written it to the socket. The wire
//! bytes are exactly what the protobuf encoder would produce (fields 2, 3, then 1000, the order Arrow's own
//! serializer uses). Every other method, and the authentication of this one, stays with tonic.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::{FlightData, Ticket};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use http_body::Frame;
use http_body_util::BodyExt;
use prost::Message as _;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Interceptor;
use tonic::Status;
use tower_service::Service;

use crate::auth::Check;
use crate::gateway::Gateway;

const DO_GET: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// The largest `DoGet` request accepted: a ticket is a name and a few options.
const MAX_REQUEST: usize = 64 * 1024;

/// Routes `DoGet` to [`get`] and everything else to `inner` (tonic's service, with its interceptor).
#[derive(Clone, Debug)]
pub(crate) struct Route<S> {
    pub inner: S,
    pub gateway: Gateway,
    pub check: Check,
}

impl<S> NamedService for Route<S> {
    const NAME: &'static str = <FlightServiceServer<Gateway> as NamedService>::NAME;
}

impl<S, B> Service<http::Request<Body>> for Route<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() == DO_GET {
            let gateway = self.gateway.clone();
            let check = self.check.clone();
            return async move { Ok(get(gateway, check, req).await) }.boxed();
        }
        let fut = self.inner.call(req);
        async move {
            let resp = fut.await?;
            Ok(resp.map(Body::new))
        }
        .boxed()
    }
}

/// One `DoGet`: authenticate, read the ticket, and answer with [`GrpcBody`] (or a trailers-only error).
async fn get(gateway: Gateway, mut check: Check, req: http::Request<Body>) -> http::Response<Body> {
    match start(&gateway, &mut check, req).await {
        Ok(messages) => {
            let mut resp = http::Response::new(Body::new(GrpcBody {
                messages,
                pending: VecDeque::new(),
                done: false,
            }));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/grpc"),
            );
            resp
        }
        Err(status) => status.into_http(),
    }
}

async fn start(
    gateway: &Gateway,
    check: &mut Check,
    req: http::Request<Body>,
) -> Result<BoxStream<'static, Result<FlightData, Status>>, Status> {
    let (parts, body) = req.into_parts();
    let metadata = tonic::metadata::MetadataMap::from_headers(parts.headers);
    check.call(tonic::Request::from_parts(metadata, parts.extensions, ()))?;
    let limited = http_body_util::Limited::new(body, MAX_REQUEST);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("cannot read the DoGet request: {e}")))?
        .to_bytes();
    let ticket = decode_request(&bytes)?;
    gateway.flight(ticket).await
}

/// A gRPC request body of one uncompressed message: the `Ticket`.
fn decode_request(bytes: &[u8]) -> Result<Ticket, Status> {
    let bad = |what: &str| Status::invalid_argument(format!("bad DoGet request: {what}"));
    let (prefix, rest) = bytes
        .split_first_chunk::<5>()
        .ok_or_else(|| bad("shorter than a gRPC message prefix"))?;
    if prefix[0] != 0 {
        return Err(Status::unimplemented(
            "compressed requests are not accepted; send the ticket uncompressed",
        ));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    let msg = rest
        .get(..len)
        .filter(|_| rest.len() == len)
        .ok_or_else(|| bad("the length prefix does not match the body (one Ticket expected)"))?;
    Ticket::decode(msg).map_err(|e| bad(&format!("not a Ticket: {e}")))
}

fn varint(mut v: u64, out: &mut BytesMut) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.extend_from_slice(&[byte]);
            return;
        }
        out.extend_from_slice(&[byte | 0x80]);
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The protobuf key of a length-delimited field.
fn key(field: u64) -> u64 {
    (field << 3) | 2
}

/// A `FlightData` as gRPC body pieces: the owned head, then the body slice (if any).
fn encode(fd: FlightData) -> Result<[Bytes; 2], Status> {
    let field_len = |field: u64, len: usize| {
        if len == 0 {
            0
        } else {
            varint_len(key(field)) + varint_len(len as u64) + len
        }
    };
    if fd.flight_descriptor.is_some() {
        return Err(Status::internal(
            "a DoGet message with a descriptor (a bug)",
        ));
    }
    let total = field_len(2, fd.data_header.len())
        + field_len(3, fd.app_metadata.len())
        + field_len(1000, fd.data_body.len());
    let total = u32::try_from(total)
        .map_err(|_| Status::resource_exhausted("a message over 4 GiB cannot be framed by gRPC"))?;
    let mut head = BytesMut::with_capacity(32 + fd.data_header.len() + fd.app_metadata.len());
    head.extend_from_slice(&[0]);
    head.extend_from_slice(&total.to_be_bytes());
    for (field, data) in [(2, &fd.data_header), (3, &fd.app_metadata)] {
        if !data.is_empty() {
            varint(key(field), &mut head);
            varint(data.len() as u64, &mut head);
            head.extend_from_slice(data);
        }
    }
    if !fd.data_body.is_empty() {
        varint(key(1000), &mut head);
        varint(fd.data_body.len() as u64, &mut head);
    }
    Ok([head.freeze(), fd.data_body])
}

/// The response body: each message's pieces in turn, then the trailers with the call's status.
struct GrpcBody {
    messages: BoxStream<'static, Result<FlightData, Status>>,
    pending: VecDeque<Bytes>,
    done: bool,
}

fn trailers(status: &Status) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    if status.add_header(&mut map).is_err() {
        map.insert("grpc-status", http::HeaderValue::from_static("13"));
    }
    map
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                if b.is_empty() {
                    continue;
                }
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if self.done {
                return Poll::Ready(None);
            }
            // One message at a time: the next frame of the ring is read only once HTTP/2 took this one.
            let status = match self.messages.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(fd))) => match encode(fd) {
                    Ok(pieces) => {
                        self.pending.extend(pieces);
                        continue;
                    }
                    Err(s) => s,
                },
                Poll::Ready(Some(Err(s))) => s,
                Poll::Ready(None) => Status::ok(""),
            };
            self.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(trailers(&status)))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_framed_message_is_what_prost_encodes() {
        for (header, meta, body) in [
            (vec![1u8; 10], vec![], vec![]),
            (
                vec![2u8; 300],
                b"seq=1;batch=1/1".to_vec(),
                vec![3u8; 70_000],
            ),
            (vec![], vec![], vec![4u8; 1]),
        ] {
            let fd = FlightData {
                flight_descriptor: None,
                data_header: header.into(),
                app_metadata: meta.into(),
                data_body: body.into(),
            };
            let want = fd.encode_to_vec();
            let [head, body] = encode(fd).unwrap();
            let mut got = head.to_vec();
            got.extend_from_slice(&body);
            assert_eq!(got[0], 0);
            assert_eq!(
                u32::from_be_bytes(got[1..5].try_into().unwrap()) as usize,
                want.len()
            );
            assert_eq!(&got[5..], &want[..]);
        }
    }

    #[test]
    fn a_request_must_be_one_uncompressed_ticket() {
        let t = Ticket::new("x?follow");
        let msg = t.encode_to_vec();
        let mut req = vec![0];
        req.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        req.extend_from_slice(&msg);
        assert_eq!(decode_request(&req).unwrap(), t);
        assert!(decode_request(&req[..3]).is_err());
        let mut long = req.clone();
        long.push(0);
        assert!(decode_request(&long).is_err());
        req[0] = 1;
        assert_eq!(
            decode_request(&req).unwrap_err().code(),
            tonic::Code::Unimplemented
        );
    }
}
