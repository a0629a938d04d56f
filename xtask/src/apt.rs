//! Debian packages that a step needs (the C++ step: cmake, GoogleTest). Checked with `dpkg-query`;
//! installed only when missing, and always said out loud first.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Result;
use crate::shell;

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

/// Makes sure the Debian packages are installed. Missing ones are named, then installed with one
/// `apt-get update` per xtask run and `apt-get install -y --no-install-recommends` (through `sudo`
/// when not root).
pub fn ensure_debian_packages(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        println!("apt: already installed: {}", packages.join(", "));
        return Ok(());
    }
    println!(
        "apt: missing Debian packages: {}; installing them now",
        missing.join(", ")
    );
    let sudo = !is_root();
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        shell::run(apt_get(sudo).arg("update"))?;
    }
    shell::run(
        apt_get(sudo)
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).trim() == "install ok installed"
        })
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `apt-get` that never stops to ask a question (sudo drops the environment, so pass it as an argument).
fn apt_get(sudo: bool) -> Command {
    if sudo {
        let mut cmd = Command::new("sudo");
        cmd.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        cmd
    } else {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    }
}
