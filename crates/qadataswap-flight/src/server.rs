//! Starting a gateway: the address, authentication, TLS and limits, and the gRPC server around [`Gateway`].

use std::net::SocketAddr;
use std::path::PathBuf;

use arrow_flight::flight_service_server::FlightServiceServer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::auth::{Check, Token};
use crate::error::Error;
use crate::gateway::{Gateway, Limits};
use crate::response::Route;

/// The default address: loopback only. Serving other hosts is a deliberate `--bind`.
pub const DEFAULT_BIND: &str = "127.0.0.1:8815";

/// Everything a gateway is started with.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen (port 0: any free port; [`serve`] reports the one bound).
    pub bind: SocketAddr,
    /// The bearer token every call must carry; `None` only when asked for explicitly (`--no-auth`).
    pub token: Option<Token>,
    /// PEM certificate chain and private key: serve over TLS (rustls).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Streams and message size.
    pub limits: Limits,
}

impl ServeOptions {
    /// Loopback on `DEFAULT_BIND`, the given token, no TLS, default limits.
    pub fn new(token: Option<Token>) -> ServeOptions {
        ServeOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 8815)),
            token,
            tls: None,
            limits: Limits::default(),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Resolves when the process gets SIGINT or SIGTERM: the server then stops taking calls, ends its streams and
/// returns (their leases are released as the streams drop).
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // No signal handling: run until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Run a gateway until SIGINT/SIGTERM, on a runtime of its own (blocks the calling thread). `ready` is called
/// with the bound address once the port is open, before any call is taken (the CLI prints it).
///
/// # Errors
/// [`Error::Bind`], [`Error::Tls`] for unreadable or unusable PEM files, [`Error::Serve`].
pub fn serve(opts: ServeOptions, ready: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    runtime()?.block_on(serve_async(opts, ready))
}

/// [`serve`] on the caller's Tokio runtime.
///
/// # Errors
/// As [`serve`].
pub async fn serve_async(opts: ServeOptions, ready: impl FnOnce(SocketAddr)) -> Result<(), Error> {
    let mut builder = Server::builder();
    if let Some((cert, key)) = &opts.tls {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| Error::Tls {
                why: format!("cannot read {}: {e}", p.display()),
            })
        };
        let identity = Identity::from_pem(read(cert)?, read(key)?);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| Error::Tls {
                why: format!("the certificate or key is not usable: {e}"),
            })?;
    }
    let listener = tokio::net::TcpListener::bind(opts.bind)
        .await
        .map_err(|source| Error::Bind {
            addr: opts.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: opts.bind,
        source,
    })?;
    let max = opts.limits.max_message_bytes;
    let gateway = Gateway::new(opts.limits.clone());
    let check = Check { token: opts.token };
    let service = FlightServiceServer::new(gateway.clone())
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let service = Route {
        inner: InterceptedService::new(service, check.clone()),
        gateway: gateway.clone(),
        check,
    };
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let sweeper = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::gateway::KEEP_IDLE_READER / 2);
            loop {
                tick.tick().await;
                gateway.evict_idle_readers();
            }
        })
    };
    ready(addr);
    let served = builder
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown_signal())
        .await;
    sweeper.abort();
    served?;
    Ok(())
}
