//! Bearer-token authentication: the token file and the check every call goes through.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use tonic::{Request, Status};

use crate::error::Error;

/// A bearer token, read from a file only its owner can read. `Debug` does not show it.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Read the token from `path`: one line of printable ASCII (surrounding whitespace ignored), in a regular file
    /// of this user with no permission bits for group or others (`chmod 600`).
    ///
    /// # Errors
    /// [`Error::TokenFile`] saying what is wrong: missing, another user's, readable by others, empty, not
    /// printable ASCII.
    pub fn from_file(path: &Path) -> Result<Token, Error> {
        let bad = |why: String| Error::TokenFile {
            path: path.to_owned(),
            why,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(bad(format!(
                "owned by uid {}, not by you (uid {me}); use a token file of your own",
                meta.uid()
            )));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "has permissions {mode:04o}, so others may read the token; run `chmod 600 {}`",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        Token::new(text.trim()).map_err(bad)
    }

    /// A token from text: non-empty printable ASCII without spaces.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn new(text: &str) -> Result<Token, String> {
        if text.is_empty() {
            return Err("the token is empty; put a long random string in it".into());
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Token(text.into()))
    }

    /// The `authorization` header value a client sends: `Bearer <token>`.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `header` is `Bearer <this token>`, compared in constant time.
    fn accepts(&self, header: &[u8]) -> bool {
        let want = self.header();
        let want = want.as_bytes();
        if header.len() != want.len() {
            return false;
        }
        header
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The check run before every call: with a token, the `authorization` header must carry it.
#[derive(Clone, Debug)]
pub(crate) struct Check {
    pub token: Option<Token>,
}

impl tonic::service::Interceptor for Check {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else {
            return Ok(req);
        };
        match req.metadata().get("authorization") {
            Some(v) if token.accepts(v.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated(
                "wrong bearer token: send `authorization: Bearer <token>` with the token in the gateway's --token-file",
            )),
            None => Err(Status::unauthenticated(
                "this gateway needs a bearer token: send the header `authorization: Bearer <token>` with the token \
                 in the gateway's --token-file",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_token_file_readable_by_others_is_refused_and_one_of_0600_is_read() {
        let dir = std::env::temp_dir().join(format!("qads-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Token::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = Token::from_file(&f).unwrap();
        assert!(t.accepts(b"Bearer s3cret"));
        assert!(!t.accepts(b"Bearer s3cre"));
        assert!(!t.accepts(b"Bearer s3creT"));
        assert_eq!(format!("{t:?}"), "Token(..)");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
