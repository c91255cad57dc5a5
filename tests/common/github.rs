//! A fake GitHub REST API on loopback that speaks the Git Data API subset the
//! publisher uses (repository info, refs, commits, trees, blobs, pages),
//! backed by a real bare git repository: blobs go through `git hash-object -w`,
//! trees through a temporary index (`read-tree`, `update-index`, `write-tree`),
//! commits through `git commit-tree`, refs through `git update-ref` (with the
//! fast-forward check GitHub makes). Tests verify the result with `git clone`.
//! The Pages API (`GET …/pages`) answers what [`FakeGitHub::set_pages`] says:
//! 404 (not enabled, the default), 403, or a site deployed from a branch or
//! a workflow.

use super::server::{Response, Server};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

/// Runs git on the bare repository; panics on failure (test helper).
pub fn git(repo: &Path, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(repo).args(args);
    cmd.env("GIT_AUTHOR_NAME", "fake")
        .env("GIT_AUTHOR_EMAIL", "fake@example.com")
        .env("GIT_COMMITTER_NAME", "fake")
        .env("GIT_COMMITTER_EMAIL", "fake@example.com");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            input.write_all(data).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// git without panicking: (success, stdout).
fn try_git(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Commits `files` onto `branch` of the bare repo directly (as another pusher
/// would): on top of the branch's tree when it exists.
pub fn commit_files(repo: &Path, branch: &str, files: &[(&str, &[u8])], message: &str) -> String {
    let index = tempfile::NamedTempFile::new().unwrap();
    let idx = index.path().to_str().unwrap().to_string();
    let env = [("GIT_INDEX_FILE", idx.as_str())];
    let (exists, head) = try_git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ],
        &[],
    );
    if exists {
        git(repo, &["read-tree", &head], None, &env);
    } else {
        git(repo, &["read-tree", "--empty"], None, &env);
    }
    for (path, content) in files {
        let sha = git(repo, &["hash-object", "-w", "--stdin"], Some(content), &[]);
        git(
            repo,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{sha},{path}"),
            ],
            None,
            &env,
        );
    }
    let tree = git(repo, &["write-tree"], None, &env);
    let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
    if exists {
        args.extend(["-p", head.as_str()]);
    }
    let commit = git(repo, &args, None, &[]);
    git(
        repo,
        &["update-ref", &format!("refs/heads/{branch}"), &commit],
        None,
        &[],
    );
    commit
}

/// Clones `branch` and returns every file (path → bytes), `.git` left out.
pub fn clone_files(repo: &Path, branch: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("git")
        .args(["clone", "-q", "--branch", branch])
        .arg(repo)
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = dir.path().join("c");
    let mut files = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap() == ".git" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// Commits on a branch, newest first.
pub fn commit_count(repo: &Path, branch: &str) -> usize {
    git(repo, &["rev-list", "--count", branch], None, &[])
        .parse()
        .unwrap()
}

type Hook = Box<dyn FnOnce(&Path) + Send>;

/// What `GET /repos/{owner}/{repo}/pages` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum FakePages {
    /// 404: the repository has no Pages site (the default).
    NotEnabled,
    /// 403: the token may not read the Pages settings.
    Forbidden,
    /// 200: Pages deploys `branch` (folder `path`) to `url`.
    FromBranch {
        url: String,
        branch: String,
        path: String,
    },
    /// 200: Pages deploys a GitHub Actions workflow's artifact to `url`.
    FromWorkflow { url: String },
}

impl FakePages {
    /// Pages on, deploying `branch`'s root to `url`.
    pub fn branch(url: &str, branch: &str) -> FakePages {
        FakePages::FromBranch {
            url: url.into(),
            branch: branch.into(),
            path: "/".into(),
        }
    }

    fn answer(&self) -> (u16, serde_json::Value) {
        match self {
            FakePages::NotEnabled => (404, message("Not Found")),
            FakePages::Forbidden => (403, message("Resource not accessible by integration")),
            FakePages::FromBranch { url, branch, path } => (
                200,
                serde_json::json!({
                    "url": "https://api.github.example/repos/x/pages",
                    "status": "built",
                    "html_url": url,
                    "build_type": "legacy",
                    "source": { "branch": branch, "path": path },
                    "public": true,
                }),
            ),
            FakePages::FromWorkflow { url } => (
                200,
                serde_json::json!({
                    "status": "built", "html_url": url, "build_type": "workflow", "public": true,
                }),
            ),
        }
    }
}

/// The fake API; stops when dropped.
pub struct FakeGitHub {
    /// The API base URL to give the publisher (`http://127.0.0.1:PORT/api/v3`).
    pub api_url: String,
    /// The bare repository behind `owner/name`.
    pub repo: PathBuf,
    /// (method, path) of every request.
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
    /// Runs once, just before the first ref creation or update is applied
    /// (to simulate a concurrent push).
    pub before_ref_update: Arc<Mutex<Option<Hook>>>,
    /// What the Pages API answers (see [`FakeGitHub::set_pages`]).
    pub pages: Arc<Mutex<FakePages>>,
    /// Injected failures (see [`FakeGitHub::fail`]).
    failures: Arc<Mutex<Vec<Failure>>>,
    _dir: tempfile::TempDir,
    _server: Server,
}

impl FakeGitHub {
    /// Serves `owner/name` at `http://127.0.0.1:PORT/api/v3`, accepting only
    /// `token`; `push` is what the repository info says about write access.
    pub fn start(full_name: &str, token: &str, push: bool) -> FakeGitHub {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo.git");
        let out = Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&repo)
            .output()
            .unwrap();
        assert!(out.status.success());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let hook: Arc<Mutex<Option<Hook>>> = Arc::new(Mutex::new(None));
        let pages = Arc::new(Mutex::new(FakePages::NotEnabled));
        let ctx = Ctx {
            pages: pages.clone(),
            repo: repo.clone(),
            prefix: format!("/api/v3/repos/{full_name}"),
            full_name: full_name.to_string(),
            token: token.to_string(),
            push,
            hook: hook.clone(),
        };
        let failures: Arc<Mutex<Vec<Failure>>> = Arc::default();
        let (log, fail) = (requests.clone(), failures.clone());
        // One request at a time, as a repository applies them.
        let one_at_a_time = Mutex::new(());
        let server = Server::start(move |request| {
            let _turn = one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
            let (method, url) = (request.method.clone(), request.path.clone());
            log.lock().unwrap().push((method.clone(), url.clone()));
            let auth = request.header("authorization");
            let injected = fail.lock().unwrap().iter_mut().find_map(|f| {
                (f.times > 0 && f.method == method && url.contains(&f.part)).then(|| {
                    f.times -= 1;
                    f.status
                })
            });
            let (status, json) = match injected {
                Some(status) => (status, message("injected failure")),
                None => ctx.handle(&method, &url, auth, &request.body),
            };
            Some(Response::new(status, json.to_string()).header("Content-Type", "application/json"))
        });
        let api_url = format!("{}/api/v3", server.url);
        FakeGitHub {
            api_url,
            repo,
            requests,
            before_ref_update: hook,
            pages,
            failures,
            _dir: dir,
            _server: server,
        }
    }

    /// Sets what the Pages API answers from now on.
    pub fn set_pages(&self, pages: FakePages) {
        *self.pages.lock().unwrap() = pages;
    }

    /// Answers the next `times` requests of `method` to a path containing
    /// `part` with `status` (the request is not handled).
    pub fn fail(&self, method: &str, part: &str, status: u16, times: usize) {
        self.failures.lock().unwrap().push(Failure {
            method: method.into(),
            part: part.into(),
            status,
            times,
        });
    }

    /// How many requests of `method` went to a path containing `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p)| m == method && p.contains(part))
            .count()
    }
}

/// The next `times` requests of `method` to a path containing `part` answer
/// `status` instead of being handled.
struct Failure {
    method: String,
    part: String,
    status: u16,
    times: usize,
}

struct Ctx {
    repo: PathBuf,
    prefix: String,
    full_name: String,
    token: String,
    push: bool,
    hook: Arc<Mutex<Option<Hook>>>,
    pages: Arc<Mutex<FakePages>>,
}

fn message(text: &str) -> serde_json::Value {
    serde_json::json!({ "message": text, "documentation_url": "https://docs.github.com/rest" })
}

impl Ctx {
    fn handle(
        &self,
        method: &str,
        url: &str,
        auth: Option<&str>,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let ok_auth = auth == Some(&format!("Bearer {}", self.token))
            || auth == Some(&format!("token {}", self.token));
        if !ok_auth {
            return (401, message("Bad credentials"));
        }
        let Some(rest) = url.strip_prefix(&self.prefix) else {
            return (404, message("Not Found"));
        };
        let (path, _query) = rest.split_once('?').unwrap_or((rest, ""));
        let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let repo = &self.repo;
        match (method, path) {
            ("GET", "") => (
                200,
                serde_json::json!({
                    "full_name": self.full_name,
                    "html_url": format!("https://github.example/{}", self.full_name),
                    "default_branch": "main",
                    "permissions": { "admin": false, "push": self.push, "pull": true },
                }),
            ),
            ("GET", "/pages") => self.pages.lock().unwrap().answer(),
            ("GET", p) if p.starts_with("/git/ref/heads/") => {
                let branch = &p["/git/ref/heads/".len()..];
                match try_git(
                    repo,
                    &[
                        "rev-parse",
                        "--verify",
                        "-q",
                        &format!("refs/heads/{branch}"),
                    ],
                    &[],
                ) {
                    (true, sha) => (
                        200,
                        serde_json::json!({
                            "ref": format!("refs/heads/{branch}"),
                            "object": { "sha": sha, "type": "commit" },
                        }),
                    ),
                    _ => (404, message("Not Found")),
                }
            }
            ("GET", p) if p.starts_with("/git/commits/") => {
                let sha = &p["/git/commits/".len()..];
                let (ok, text) = try_git(repo, &["cat-file", "commit", sha], &[]);
                if !ok {
                    return (404, message("Not Found"));
                }
                let tree = text
                    .lines()
                    .find_map(|l| l.strip_prefix("tree "))
                    .unwrap_or_default();
                let parents: Vec<serde_json::Value> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("parent "))
                    .map(|s| serde_json::json!({ "sha": s }))
                    .collect();
                (
                    200,
                    serde_json::json!({ "sha": sha, "tree": { "sha": tree }, "parents": parents }),
                )
            }
            ("GET", p) if p.starts_with("/git/trees/") => {
                let sha = &p["/git/trees/".len()..];
                let (ok, text) = try_git(repo, &["ls-tree", "-r", "-t", "-l", sha], &[]);
                if !ok {
                    return (404, message("Not Found"));
                }
                let items: Vec<serde_json::Value> = text
                    .lines()
                    .filter_map(|l| {
                        let (meta, path) = l.split_once('\t')?;
                        let f: Vec<&str> = meta.split_whitespace().collect();
                        Some(serde_json::json!({
                            "path": path, "mode": f[0], "type": f[1], "sha": f[2],
                        }))
                    })
                    .collect();
                (
                    200,
                    serde_json::json!({ "sha": sha, "tree": items, "truncated": false }),
                )
            }
            ("GET", p) if p.starts_with("/git/blobs/") => {
                let sha = &p["/git/blobs/".len()..];
                let out = Command::new("git")
                    .arg("--git-dir")
                    .arg(repo)
                    .args(["cat-file", "blob", sha])
                    .output()
                    .unwrap();
                if !out.status.success() {
                    return (404, message("Not Found"));
                }
                let content = base64::engine::general_purpose::STANDARD.encode(&out.stdout);
                (
                    200,
                    serde_json::json!({ "sha": sha, "content": content, "encoding": "base64", "size": out.stdout.len() }),
                )
            }
            ("POST", "/git/blobs") => {
                if !self.push {
                    return (403, message("Resource not accessible by integration"));
                }
                let content = body["content"].as_str().unwrap_or_default();
                let bytes = match body["encoding"].as_str() {
                    Some("base64") => base64::engine::general_purpose::STANDARD
                        .decode(content)
                        .unwrap(),
                    _ => content.as_bytes().to_vec(),
                };
                let sha = git(repo, &["hash-object", "-w", "--stdin"], Some(&bytes), &[]);
                (201, serde_json::json!({ "sha": sha }))
            }
            ("POST", "/git/trees") => {
                let index = tempfile::NamedTempFile::new().unwrap();
                let idx = index.path().to_str().unwrap().to_string();
                let env = [("GIT_INDEX_FILE", idx.as_str())];
                match body["base_tree"].as_str() {
                    Some(base) => {
                        git(repo, &["read-tree", base], None, &env);
                    }
                    None => {
                        git(repo, &["read-tree", "--empty"], None, &env);
                    }
                }
                for entry in body["tree"].as_array().cloned().unwrap_or_default() {
                    let path = entry["path"].as_str().unwrap_or_default();
                    match entry["sha"].as_str() {
                        Some(sha) => {
                            let mode = entry["mode"].as_str().unwrap_or("100644");
                            let (ok, _) = try_git(
                                repo,
                                &[
                                    "update-index",
                                    "--add",
                                    "--cacheinfo",
                                    &format!("{mode},{sha},{path}"),
                                ],
                                &env,
                            );
                            if !ok {
                                return (422, message("Invalid tree info"));
                            }
                        }
                        None => {
                            // GitHub refuses to delete a path the base tree lacks.
                            let (ok, _) =
                                try_git(repo, &["ls-files", "--error-unmatch", path], &env);
                            if !ok {
                                return (422, message("GitRPC::BadObjectState"));
                            }
                            // Mode 0 removes the entry (no work tree needed).
                            let line = format!("0 {}\t{path}\n", "0".repeat(40));
                            git(
                                repo,
                                &["update-index", "--index-info"],
                                Some(line.as_bytes()),
                                &env,
                            );
                        }
                    }
                }
                let sha = git(repo, &["write-tree"], None, &env);
                (201, serde_json::json!({ "sha": sha }))
            }
            ("POST", "/git/commits") => {
                let tree = body["tree"].as_str().unwrap_or_default().to_string();
                let msg = body["message"].as_str().unwrap_or_default().to_string();
                let mut args = vec!["commit-tree".to_string(), tree, "-m".into(), msg];
                for p in body["parents"].as_array().cloned().unwrap_or_default() {
                    args.push("-p".into());
                    args.push(p.as_str().unwrap_or_default().to_string());
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let sha = git(repo, &args, None, &[]);
                (201, serde_json::json!({ "sha": sha }))
            }
            ("POST", "/git/refs") => {
                if let Some(hook) = self.hook.lock().unwrap().take() {
                    hook(repo);
                }
                let name = body["ref"].as_str().unwrap_or_default();
                let sha = body["sha"].as_str().unwrap_or_default();
                if try_git(repo, &["rev-parse", "--verify", "-q", name], &[]).0 {
                    return (422, message("Reference already exists"));
                }
                git(repo, &["update-ref", name, sha], None, &[]);
                (
                    201,
                    serde_json::json!({ "ref": name, "object": { "sha": sha, "type": "commit" } }),
                )
            }
            ("PATCH", p) if p.starts_with("/git/refs/heads/") => {
                if let Some(hook) = self.hook.lock().unwrap().take() {
                    hook(repo);
                }
                let name = format!("refs/heads/{}", &p["/git/refs/heads/".len()..]);
                let sha = body["sha"].as_str().unwrap_or_default();
                let force = body["force"].as_bool().unwrap_or(false);
                let (exists, old) = try_git(repo, &["rev-parse", "--verify", "-q", &name], &[]);
                if !exists {
                    return (422, message("Reference does not exist"));
                }
                if !force && !try_git(repo, &["merge-base", "--is-ancestor", &old, sha], &[]).0 {
                    return (422, message("Update is not a fast forward"));
                }
                git(repo, &["update-ref", &name, sha, &old], None, &[]);
                (
                    200,
                    serde_json::json!({ "ref": name, "object": { "sha": sha, "type": "commit" } }),
                )
            }
            _ => (404, message("Not Found")),
        }
    }
}
