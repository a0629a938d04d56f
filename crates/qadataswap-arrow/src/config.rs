//! `qadataswap.yaml`: defaults for writers and readers, snapshot and stream alike.
//!
//! ```yaml
//! memory:
//!   size_mb: 64          # total data capacity of a segment, split across num_buffers slots
//!   num_buffers: 3       # slots in the ring (1..=64)
//! sync:
//!   timeout_ms: 5000     # one attempt of a blocking call (read, or a write waiting for readers)
//!   retry_count: 3       # attempts after the first before a timeout error
//! compression:
//!   enabled: false       # Arrow IPC body compression (costs a copy on read)
//!   algorithm: lz4       # lz4 | zstd
//! ```
//!
//! Every writer and reader builder of every layer and binding (snapshot and stream; Rust, Python, C/C++) starts
//! from [`Config::load`] unless it is given a [`Config`] or all its options explicitly.
//!
//! Where it comes from, lowest precedence first:
//! 1. built-in defaults (the values above);
//! 2. one file, the first of: a path given explicitly (a builder's `config_file`, Python's `config=`), the file
//!    named by the environment variable `QADATASWAP_CONFIG` (both must then exist), or `qadataswap.yaml` in the
//!    working directory if there is one; every key is optional;
//! 3. one environment variable per key: `QADATASWAP_MEMORY_SIZE_MB`, `QADATASWAP_MEMORY_NUM_BUFFERS`,
//!    `QADATASWAP_SYNC_TIMEOUT_MS`, `QADATASWAP_SYNC_RETRY_COUNT`, `QADATASWAP_COMPRESSION_ENABLED`,
//!    `QADATASWAP_COMPRESSION_ALGORITHM`;
//! 4. explicit arguments (builder calls) win over all of these.
//!
//! An unknown key or a bad value is an error naming the file (or variable) and the key; nothing is ignored.
//!
//! # What `sync.retry_count` means
//! A blocking call made without an explicit timeout (a stream read, a stream write waiting for the slowest reader)
//! waits `timeout_ms`; if that passes while the other side is still alive, it tries again, up to `retry_count` more
//! times, and then fails with a timeout error that gives the total wait and the number of attempts. The longest
//! wait is therefore `timeout_ms x (retry_count + 1)`. A dead writer, a dead reader or the clean end of a stream
//! ends the wait at once, whatever the count. An explicit timeout argument is one attempt and is not retried.
//! A snapshot writer waiting for leased slots makes one attempt: its lease timeout is `timeout_ms`
//! ([`Config::writer_options`]). A snapshot reader opening a name that does not exist yet waits `timeout_ms`;
//! [`Config::reader_options`] gives the whole `timeout_ms x (retry_count + 1)` as a default read timeout for those
//! who ask for one (a snapshot reader's own default is to wait until a frame comes or the writer goes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::options::{Compression, ReaderOptions, WriterOptions};
use serde_yaml_ng::Value;

/// Name of the file looked for in the working directory.
pub const FILE_NAME: &str = "qadataswap.yaml";
/// Environment variable naming the configuration file.
pub const ENV_CONFIG: &str = "QADATASWAP_CONFIG";

/// The keys, with their environment variables.
const KEYS: &[(&str, &str)] = &[
    ("memory.size_mb", "QADATASWAP_MEMORY_SIZE_MB"),
    ("memory.num_buffers", "QADATASWAP_MEMORY_NUM_BUFFERS"),
    ("sync.timeout_ms", "QADATASWAP_SYNC_TIMEOUT_MS"),
    ("sync.retry_count", "QADATASWAP_SYNC_RETRY_COUNT"),
    ("compression.enabled", "QADATASWAP_COMPRESSION_ENABLED"),
    ("compression.algorithm", "QADATASWAP_COMPRESSION_ALGORITHM"),
];

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error(
        "cannot read the configuration file {path}: {source}; fix the path (given to the builder, or in \
         {ENV_CONFIG}), or leave it out to use ./qadataswap.yaml or the defaults"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML, or not a mapping of sections.
    #[error("configuration file {origin} is not valid: {what}")]
    Syntax {
        /// The file.
        origin: String,
        /// What is wrong.
        what: String,
    },
    /// A key that this version does not know.
    #[error(
        "configuration file {origin}: unknown key '{key}'; the known keys are memory.size_mb, memory.num_buffers, \
         sync.timeout_ms, sync.retry_count, compression.enabled, compression.algorithm"
    )]
    UnknownKey {
        /// The file.
        origin: String,
        /// The key, dotted (`memory.sizemb`).
        key: String,
    },
    /// A value of the wrong type or out of range.
    #[error("{origin}: bad value {value} for '{key}': expected {expected}")]
    BadValue {
        /// The file, or `environment variable NAME`.
        origin: String,
        /// The key, dotted.
        key: String,
        /// The value found, as written.
        value: String,
        /// What would be right.
        expected: &'static str,
    },
}

/// Compression algorithm names of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// LZ4 frame.
    #[default]
    Lz4,
    /// Zstandard.
    Zstd,
}

/// The resolved configuration (defaults, then file, then environment).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `memory.size_mb`: total data capacity in MiB (default 64).
    pub size_mb: u64,
    /// `memory.num_buffers`: slots in the ring (default 3).
    pub num_buffers: usize,
    /// `sync.timeout_ms`: one attempt of a blocking call, in ms (default 5000).
    pub timeout_ms: u64,
    /// `sync.retry_count`: attempts after the first (default 3).
    pub retry_count: u32,
    /// `compression.enabled` (default false).
    pub compression_enabled: bool,
    /// `compression.algorithm` (default lz4).
    pub algorithm: Algorithm,
    /// The file that was read, if any.
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size_mb: 64,
            num_buffers: 3,
            timeout_ms: 5000,
            retry_count: 3,
            compression_enabled: false,
            algorithm: Algorithm::Lz4,
            source: None,
        }
    }
}

impl Config {
    /// Defaults, the file (`$QADATASWAP_CONFIG`, else `./qadataswap.yaml` if present), then the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or variable and the key.
    pub fn load() -> Result<Config, ConfigError> {
        Self::load_with(None)
    }

    /// [`Config::load`] with an explicit file, which then wins over `$QADATASWAP_CONFIG` and the working
    /// directory (and must exist); `None` is [`Config::load`].
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with(file: Option<&Path>) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let explicit = file.map(|f| f.as_os_str().to_string_lossy().into_owned());
        Self::load_from(&cwd, |k| {
            if k == ENV_CONFIG && explicit.is_some() {
                return explicit.clone();
            }
            std::env::var(k).ok()
        })
    }

    /// [`Config::load`] with the working directory and the environment given explicitly (for tests and embedders).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_from(
        cwd: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let file = match env(ENV_CONFIG).filter(|p| !p.is_empty()) {
            Some(p) => {
                let p = PathBuf::from(p);
                Some(if p.is_relative() { cwd.join(p) } else { p })
            }
            None => Some(cwd.join(FILE_NAME)).filter(|p| p.is_file()),
        };
        if let Some(path) = file {
            cfg = Config::from_file(&path)?;
        }
        cfg.apply_env(env)?;
        Ok(cfg)
    }

    /// Defaults overridden by one file (no environment).
    ///
    /// # Errors
    /// [`ConfigError::Read`], and as [`Config::from_yaml`].
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Config::from_yaml(&text, &path.display().to_string())?;
        cfg.source = Some(path.to_owned());
        Ok(cfg)
    }

    /// Defaults overridden by YAML text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`], [`ConfigError::UnknownKey`], [`ConfigError::BadValue`].
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let syntax = |what: String| ConfigError::Syntax {
            origin: origin.to_owned(),
            what,
        };
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| syntax(e.to_string()))?;
        let top = match doc {
            Value::Null => return Ok(cfg),
            Value::Mapping(m) => m,
            other => {
                return Err(syntax(format!(
                "the top level must be a mapping of sections (memory, sync, compression), found {}",
                kind(&other)
            )))
            }
        };
        for (section, body) in top {
            let section = key_name(&section, origin, "")?;
            if !matches!(section.as_str(), "memory" | "sync" | "compression") {
                return Err(ConfigError::UnknownKey {
                    origin: origin.to_owned(),
                    key: section,
                });
            }
            let body = match body {
                Value::Null => continue,
                Value::Mapping(m) => m,
                other => {
                    return Err(ConfigError::BadValue {
                        origin: origin.to_owned(),
                        key: section,
                        value: describe(&other),
                        expected: "a mapping of keys",
                    })
                }
            };
            for (k, v) in body {
                let key = format!("{section}.{}", key_name(&k, origin, &section)?);
                if !KEYS.iter().any(|(name, _)| *name == key) {
                    return Err(ConfigError::UnknownKey {
                        origin: origin.to_owned(),
                        key,
                    });
                }
                let text = match &v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(ConfigError::BadValue {
                            origin: origin.to_owned(),
                            key,
                            value: describe(other),
                            expected: "a scalar",
                        })
                    }
                };
                // Strings are accepted only where a string is meant (the algorithm); `size_mb: "64"` is a mistake.
                if matches!(v, Value::String(_)) && key != "compression.algorithm" {
                    return Err(cfg.bad(origin, &key, &format!("{text:?}")));
                }
                cfg.set(&key, &text, origin)?;
            }
        }
        Ok(cfg)
    }

    /// Override keys from `QADATASWAP_*` environment variables (through `env`).
    ///
    /// # Errors
    /// [`ConfigError::BadValue`] naming the variable.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (key, var) in KEYS {
            if let Some(v) = env(var) {
                self.set(key, v.trim(), &format!("environment variable {var}"))?;
            }
        }
        Ok(())
    }

    fn bad(&self, origin: &str, key: &str, value: &str) -> ConfigError {
        let expected = match key {
            "memory.size_mb" => "a whole number of MiB, at least 1",
            "memory.num_buffers" => "a whole number of slots from 1 to 64",
            "sync.timeout_ms" => "a whole number of milliseconds, at least 1",
            "sync.retry_count" => "a whole number, 0 or more",
            "compression.enabled" => "true or false",
            _ => "lz4 or zstd",
        };
        ConfigError::BadValue {
            origin: origin.to_owned(),
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
        }
    }

    fn set(&mut self, key: &str, value: &str, origin: &str) -> Result<(), ConfigError> {
        let bad = || self.bad(origin, key, value);
        match key {
            "memory.size_mb" => {
                self.size_mb = value
                    .parse()
                    .ok()
                    .filter(|v: &u64| (1..=(1 << 40)).contains(v))
                    .ok_or_else(bad)?;
            }
            "memory.num_buffers" => {
                self.num_buffers = value
                    .parse()
                    .ok()
                    .filter(|v: &usize| (1..=64).contains(v))
                    .ok_or_else(bad)?;
            }
            "sync.timeout_ms" => {
                self.timeout_ms = value
                    .parse()
                    .ok()
                    .filter(|&v: &u64| v >= 1)
                    .ok_or_else(bad)?;
            }
            "sync.retry_count" => {
                self.retry_count = value.parse().map_err(|_| bad())?;
            }
            "compression.enabled" => {
                self.compression_enabled = match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => return Err(bad()),
                };
            }
            "compression.algorithm" => {
                self.algorithm = match value.to_ascii_lowercase().as_str() {
                    "lz4" => Algorithm::Lz4,
                    "zstd" => Algorithm::Zstd,
                    _ => return Err(bad()),
                };
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    origin: origin.to_owned(),
                    key: key.to_owned(),
                })
            }
        }
        Ok(())
    }

    /// One attempt of a blocking call.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The longest a blocking call waits through all its attempts: `timeout_ms x (retry_count + 1)`.
    pub fn total_timeout(&self) -> Duration {
        self.timeout()
            .saturating_mul(self.retry_count.saturating_add(1))
    }

    /// The compression writers use (`None` unless `compression.enabled`).
    pub fn compression(&self) -> Option<Compression> {
        self.compression_enabled.then_some(match self.algorithm {
            Algorithm::Lz4 => Compression::Lz4,
            Algorithm::Zstd => Compression::Zstd,
        })
    }

    /// Data capacity in bytes.
    pub fn size_bytes(&self) -> usize {
        usize::try_from(self.size_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Writer options (what `SnapshotWriter::builder(name)` starts from): size, slots, compression, and a lease
    /// timeout of `timeout_ms` (one attempt: a snapshot write has no retry loop). Stream writers use the same
    /// options and wait for slow readers `timeout_ms` per attempt, `retry_count` more times.
    pub fn writer_options(&self) -> WriterOptions {
        WriterOptions {
            size: self.size_bytes(),
            num_buffers: self.num_buffers,
            lease_timeout: self.timeout(),
            compression: self.compression(),
            ..WriterOptions::default()
        }
    }

    /// Reader options for snapshot readers (`SnapshotReader::builder(name).options(cfg.reader_options())`): a
    /// default timeout of `timeout_ms x (retry_count + 1)`.
    pub fn reader_options(&self) -> ReaderOptions {
        ReaderOptions {
            timeout: Some(self.total_timeout()),
            ..ReaderOptions::default()
        }
    }
}

fn key_name(k: &Value, origin: &str, section: &str) -> Result<String, ConfigError> {
    match k {
        Value::String(s) => Ok(s.clone()),
        other => Err(ConfigError::UnknownKey {
            origin: origin.to_owned(),
            key: if section.is_empty() {
                describe(other)
            } else {
                format!("{section}.{}", describe(other))
            },
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => kind(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("qads-cfg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn no_file_and_no_environment_gives_the_defaults() {
        let d = tmpdir("none");
        assert_eq!(Config::load_from(&d, env(&[])).unwrap(), Config::default());
    }

    #[test]
    fn file_in_the_working_directory_is_read_and_environment_overrides_it() {
        let d = tmpdir("cwd");
        std::fs::write(
            d.join(FILE_NAME),
            "memory:\n  size_mb: 8\n  num_buffers: 4\nsync:\n  timeout_ms: 250\n  retry_count: 1\n\
             compression:\n  enabled: true\n  algorithm: zstd\n",
        )
        .unwrap();
        let c = Config::load_from(&d, env(&[])).unwrap();
        assert_eq!(
            (c.size_mb, c.num_buffers, c.timeout_ms, c.retry_count),
            (8, 4, 250, 1)
        );
        assert_eq!(c.compression(), Some(Compression::Zstd));
        assert_eq!(c.source.as_deref(), Some(d.join(FILE_NAME).as_path()));
        let c = Config::load_from(
            &d,
            env(&[
                ("QADATASWAP_MEMORY_SIZE_MB", "16"),
                ("QADATASWAP_COMPRESSION_ALGORITHM", "lz4"),
                ("QADATASWAP_SYNC_RETRY_COUNT", "0"),
            ]),
        )
        .unwrap();
        assert_eq!((c.size_mb, c.num_buffers, c.retry_count), (16, 4, 0));
        assert_eq!(c.compression(), Some(Compression::Lz4));
        let w = c.writer_options();
        assert_eq!((w.size, w.num_buffers), (16 << 20, 4));
        assert_eq!(w.lease_timeout, Duration::from_millis(250));
    }

    #[test]
    fn file_named_by_the_environment_wins_over_the_working_directory() {
        let d = tmpdir("envfile");
        std::fs::write(d.join(FILE_NAME), "memory:\n  size_mb: 8\n").unwrap();
        std::fs::write(d.join("other.yaml"), "memory:\n  size_mb: 2\n").unwrap();
        let c = Config::load_from(&d, env(&[(ENV_CONFIG, "other.yaml")])).unwrap();
        assert_eq!(c.size_mb, 2);
        let e = Config::load_from(&d, env(&[(ENV_CONFIG, "missing.yaml")])).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_file_and_the_key() {
        let e = Config::from_yaml("memory:\n  sizemb: 8\n", "/etc/q.yaml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/etc/q.yaml") && msg.contains("memory.sizemb"),
            "{msg}"
        );
        let e = Config::from_yaml("network:\n  port: 1\n", "q.yaml").unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnknownKey { key, .. } if key == "network"),
            "{e}"
        );
    }

    #[test]
    fn bad_value_is_an_error_naming_the_file_key_and_value() {
        for (text, key) in [
            ("memory:\n  num_buffers: 0\n", "memory.num_buffers"),
            ("memory:\n  size_mb: \"64\"\n", "memory.size_mb"),
            ("sync:\n  timeout_ms: -1\n", "sync.timeout_ms"),
            (
                "compression:\n  algorithm: snappy\n",
                "compression.algorithm",
            ),
            ("compression:\n  enabled: maybe\n", "compression.enabled"),
            ("sync:\n  retry_count: [1]\n", "sync.retry_count"),
        ] {
            let e = Config::from_yaml(text, "q.yaml").unwrap_err();
            match &e {
                ConfigError::BadValue { origin, key: k, .. } => {
                    assert_eq!((origin.as_str(), k.as_str()), ("q.yaml", key))
                }
                other => panic!("{text}: expected BadValue, got {other}"),
            }
        }
        let d = tmpdir("badenv");
        let e =
            Config::load_from(&d, env(&[("QADATASWAP_MEMORY_NUM_BUFFERS", "many")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("environment variable QADATASWAP_MEMORY_NUM_BUFFERS"),
            "{e}"
        );
    }

    #[test]
    fn invalid_yaml_is_a_syntax_error_naming_the_file() {
        let e = Config::from_yaml("memory: [\n", "broken.yaml").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Syntax { origin, .. } if origin == "broken.yaml"),
            "{e}"
        );
    }

    #[test]
    fn retry_count_multiplies_the_snapshot_timeouts() {
        let c = Config::from_yaml("sync:\n  timeout_ms: 100\n  retry_count: 2\n", "q").unwrap();
        assert_eq!(c.total_timeout(), Duration::from_millis(300));
        assert_eq!(c.reader_options().timeout, Some(Duration::from_millis(300)));
        assert_eq!(
            c.writer_options().lease_timeout,
            Duration::from_millis(100),
            "one attempt"
        );
    }
}
