//! Arrow Flight for QADataSwap: a gateway that serves this host's segments to other hosts, and a relay that mirrors
//! a remote segment into a local one so that readers there read it zero-copy.
//!
//! The gateway speaks plain Arrow Flight (gRPC), so every Flight client works unchanged: `ListFlights` lists the
//! segments as `qadataswap ls` classifies them, `GetFlightInfo` / `GetSchema` describe one, `DoGet` sends a
//! snapshot's newest frame (or the next one, or follows every new one) or follows a stream chunk by chunk with
//! back-pressure, and `DoPut` writes a client's stream into a segment. Tickets and descriptors are in
//! `docs/FLIGHT.md`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use qadataswap_flight::{serve, ServeOptions, Token};
//!
//! let token = Token::from_file("token".as_ref())?; // chmod 600
//! let opts = ServeOptions::new(Some(token)); // 127.0.0.1:8815
//! serve(opts, |addr| println!("listening on grpc://{addr}"))?; // until SIGINT/SIGTERM
//! # Ok(())
//! # }
//! ```
//!
//! A relay, on the second host:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use qadataswap_flight::{relay, RelayOptions};
//!
//! let opts = RelayOptions::new("flight://10.0.0.5:8815/prices".parse()?, "prices");
//! relay(opts, |line| eprintln!("{line}"))?; // until the remote stream ends or the writer closes
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//! Every Flight call answers with a status code and a message saying what happened and what to do (see
//! docs/FLIGHT.md for the table); [`Error`] covers starting a gateway or a relay.
#![forbid(unsafe_code)]

mod auth;
mod error;
mod gateway;
mod relay;
mod response;
mod server;
pub mod ticket;
mod wire;

pub use auth::Token;
pub use error::Error;
pub use gateway::{Gateway, GatewayStats, Limits};
pub use relay::{relay, FlightUrl, RelayEnd, RelayOptions, RELAY_SOURCE_KEY};
pub use server::{serve, serve_async, ServeOptions, DEFAULT_BIND};
