//! The container image, built from the Dockerfile and run the way the GitHub
//! runner runs the action: `scripts/image-smoke` with this build's binary
//! (buildah, chroot isolation; no Docker engine needed). It runs `ci` on the
//! example project and an `import` that publishes to a fake GitHub Git Data
//! API on loopback, and checks the outputs, the summary and the published
//! branch. Its figures (image size, time to the first model) are kept in
//! `target/image-smoke/last-run.txt`.
//!
//! `scripts/setup-image` (run by scripts/test) installs buildah, podman and
//! mmdebstrap wherever apt-get exists, so there a missing buildah is a
//! failure, not a skip; elsewhere the test says why it did not run.

use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn found(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_image_builds_and_its_entrypoint_runs_ci_and_publishes_like_the_runner() {
    let root = repo_root();
    if std::env::var_os("ANALYTICS_SKIP_IMAGE_SMOKE").is_some() {
        eprintln!("SKIPPED: ANALYTICS_SKIP_IMAGE_SMOKE is set; the image was not built or run");
        return;
    }
    if !found("buildah") {
        assert!(
            !found("apt-get"),
            "buildah is missing although apt-get is here: scripts/setup-image (run by \
             scripts/test) installs buildah, podman and mmdebstrap; run it, or set \
             ANALYTICS_SKIP_IMAGE_SMOKE=1 to skip this test on purpose"
        );
        eprintln!("SKIPPED: no buildah and no apt-get to install it; the image was not built");
        return;
    }
    let out = Command::new(root.join("scripts/image-smoke"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_analytics"))
        .current_dir(&root)
        .output()
        .expect("running scripts/image-smoke");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dir = root.join("target/image-smoke");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("last-run.txt"), format!("{stdout}{stderr}"));
    println!("{stdout}");
    assert!(
        out.status.success(),
        "scripts/image-smoke failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for line in ["image size:", "ci: ", "import: commit ", "passed"] {
        assert!(
            stdout.contains(line),
            "scripts/image-smoke did not report `{line}`:\n{stdout}"
        );
    }
}
