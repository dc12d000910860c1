//! `deploy/docker/Dockerfile` read as the tests need it: which files each image holds, where
//! they come from, and the environment, user, ports and entrypoint it runs with.
//!
//! The parser knows the instructions the Dockerfile uses (`FROM … AS`, `ARG`, `ENV`,
//! `WORKDIR`, `COPY [--from]`, `USER`, `EXPOSE`, `ENTRYPOINT`, `CMD`, `RUN`, `SHELL`), with
//! line continuations and `${VAR}` substitution, and nothing more: an instruction it does not
//! know is an error, so a change to the Dockerfile cannot slip past the tests unread.
//!
//! [`Image::provenance`] follows a path of a final image back through `COPY` instructions to
//! where it comes from: a file of the build context (the repository) or something a `RUN` made
//! in some stage. [`STAND_INS`] names the local equivalent of each thing a `RUN` makes (the
//! release binaries → the debug ones, the ONNX Runtime wheel's library → the one
//! `scripts/install.sh` installs), so the cluster rehearsal can map every image path to a local
//! one through the Dockerfile itself rather than through a hand-kept list of paths.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use pulse_testkit::workspace_root;

/// The Dockerfile, relative to the repository root.
pub const PATH: &str = "deploy/docker/Dockerfile";

/// The default `PATH` of the Debian runtime base, which the Dockerfile does not change.
pub const BASE_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Programs the runtime base image (Debian) ships that containers may call as `command`.
pub const BASE_PROGRAMS: &[&str] = &["/bin/sh", "/bin/bash", "/usr/bin/env"];

/// What a `RUN` makes in a stage, and the local build's equivalent of it.
pub struct StandIn {
    pub stage: &'static str,
    /// A folder (ending in `/`) or a file of that stage.
    pub path: &'static str,
    /// What on this machine stands in for it.
    pub local: fn() -> anyhow::Result<PathBuf>,
    /// Why the two are equivalent.
    pub because: &'static str,
}

/// The local equivalents of what the image build makes with `RUN`.
pub const STAND_INS: &[StandIn] = &[
    StandIn {
        stage: "builder",
        path: "/out/",
        local: crate::target_dir,
        because: "`cargo build --release` there, `cargo build` here: the same binaries",
    },
    StandIn {
        stage: "onnxruntime",
        path: "/opt/onnxruntime/",
        local: ort_dir,
        because: "both extract the library from the same PyPI wheel (scripts/install.sh)",
    },
    StandIn {
        stage: "dashboard",
        path: "/dashboard/dist/",
        local: dashboard_dist,
        because: "`npm run build` in dashboard/ writes the same files",
    },
];

fn ort_dir() -> anyhow::Result<PathBuf> {
    pulse_testkit::ort_library()
        .parent()
        .map(Path::to_path_buf)
        .context("ORT_DYLIB_PATH has no folder")
}

fn dashboard_dist() -> anyhow::Result<PathBuf> {
    Ok(workspace_root().join("dashboard/dist"))
}

/// One `COPY`, with its paths substituted and its destination made absolute.
#[derive(Debug, Clone)]
pub struct Copy {
    pub from: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
}

/// A stage as it stands after its last instruction (inheriting from a stage it is built `FROM`).
#[derive(Debug, Clone, Default)]
pub struct Stage {
    pub name: String,
    /// The `FROM` image or stage.
    pub base: String,
    pub args: BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub user: Option<String>,
    pub expose: BTreeSet<u16>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Every `COPY` that built the stage's filesystem, inherited ones first.
    pub copies: Vec<Copy>,
    /// The text of this stage's own `RUN` instructions.
    pub runs: Vec<String>,
}

impl Stage {
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `${NAME}`/`$NAME` substituted from the stage's ARGs and ENV (ENV wins, as in Docker).
    fn substitute(&self, text: &str) -> String {
        let lookup = |name: &str| {
            self.env_value(name)
                .map(str::to_owned)
                .or_else(|| self.args.get(name).cloned())
                .unwrap_or_default()
        };
        substitute(text, lookup)
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_owned()
        } else {
            let workdir = self.workdir.trim_end_matches('/');
            let path = path.trim_start_matches("./");
            if path == "." || path.is_empty() {
                format!("{workdir}/")
            } else {
                format!("{workdir}/{path}")
            }
        }
    }
}

/// Where a path of an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// A path of the build context, relative to the repository root.
    Context(String),
    /// Made by a `RUN` of `stage` (its path there).
    Built { stage: String, path: String },
}

/// The parsed Dockerfile: its stages in order, each evaluated.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// Reads and evaluates `deploy/docker/Dockerfile`.
    pub fn load() -> anyhow::Result<Self> {
        let path = workspace_root().join(PATH);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut global_args: BTreeMap<String, String> = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for (number, line) in instructions(text) {
            let (keyword, rest) = line
                .split_once(char::is_whitespace)
                .map_or((line.as_str(), ""), |(k, r)| (k, r.trim()));
            let keyword = keyword.to_ascii_uppercase();
            let context = || format!("{PATH}:{number}: {line}");
            if keyword == "FROM" {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let (base, name) = match words.as_slice() {
                    [base] => (*base, String::new()),
                    [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        (*base, (*name).to_owned())
                    }
                    _ => bail!("{}: FROM with flags or odd words", context()),
                };
                let base = substitute(base, |name| {
                    global_args.get(name).cloned().unwrap_or_default()
                });
                let mut stage = stages
                    .iter()
                    .find(|stage| !stage.name.is_empty() && stage.name == base)
                    .cloned()
                    .unwrap_or_else(|| Stage {
                        workdir: "/".to_owned(),
                        ..Stage::default()
                    });
                stage.name = name;
                stage.base = base;
                // Build arguments are scoped to a stage; a stage re-declares the ones it uses.
                stage.args.clear();
                stage.runs.clear();
                stages.push(stage);
                continue;
            }
            let Some(stage) = stages.last_mut() else {
                if keyword == "ARG" {
                    let (name, default) = split_arg(rest);
                    global_args.insert(name, default.unwrap_or_default());
                    continue;
                }
                bail!("{}: {keyword} before the first FROM", context());
            };
            match keyword.as_str() {
                "ARG" => {
                    let (name, default) = split_arg(rest);
                    let value = match default {
                        Some(default) => stage.substitute(&default),
                        None => global_args.get(&name).cloned().unwrap_or_default(),
                    };
                    stage.args.insert(name, value);
                }
                "ENV" => {
                    for (name, value) in env_pairs(rest).with_context(context)? {
                        let value = stage.substitute(&value);
                        stage.env.push((name, value));
                    }
                }
                "WORKDIR" => {
                    let path = stage.substitute(rest);
                    stage.workdir = stage.absolute(&path);
                }
                "USER" => stage.user = Some(stage.substitute(rest)),
                "EXPOSE" => {
                    for port in rest.split_whitespace() {
                        let number = port.split('/').next().unwrap_or(port);
                        let number = stage.substitute(number);
                        stage.expose.insert(
                            number
                                .parse()
                                .with_context(|| format!("{}: port {port}", context()))?,
                        );
                    }
                }
                "ENTRYPOINT" => stage.entrypoint = Some(exec_form(rest).with_context(context)?),
                "CMD" => stage.cmd = Some(exec_form(rest).with_context(context)?),
                "COPY" => {
                    let mut from = None;
                    let mut paths = Vec::new();
                    let words = if rest.trim_start().starts_with('[') {
                        exec_form(rest).with_context(context)?
                    } else {
                        rest.split_whitespace().map(str::to_owned).collect()
                    };
                    for word in words {
                        if let Some(stage_name) = word.strip_prefix("--from=") {
                            from = Some(stage_name.to_owned());
                        } else if word.starts_with("--") {
                            // --chown, --chmod, --link: ownership and layering, not content.
                        } else {
                            paths.push(stage.substitute(&word));
                        }
                    }
                    let dest = paths
                        .pop()
                        .with_context(|| format!("{}: no destination", context()))?;
                    if paths.is_empty() {
                        bail!("{}: no source", context());
                    }
                    let dest = stage.absolute(&dest);
                    stage.copies.push(Copy {
                        from,
                        sources: paths,
                        dest,
                    });
                }
                "RUN" => stage.runs.push(rest.to_owned()),
                "SHELL" => {}
                other => bail!(
                    "{}: {other} is an instruction tests/src/dockerfile.rs does not read yet",
                    context()
                ),
            }
        }
        Ok(Self { stages })
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|stage| stage.name == name)
    }

    /// The final image of `--target <target>`.
    pub fn image(&self, target: &str) -> Option<Image<'_>> {
        Some(Image {
            dockerfile: self,
            stage: self.stage(target)?,
        })
    }

    /// Where `path` of stage `stage` comes from; `None` when no `COPY` put it there and no
    /// `RUN` of that stage or its ancestors could have (that is, it belongs to a base image).
    fn provenance_in(&self, stage: &Stage, path: &str) -> Option<Provenance> {
        for copy in stage.copies.iter().rev() {
            for source in &copy.sources {
                let Some(source_path) = copied_from(copy, source, path) else {
                    continue;
                };
                return match &copy.from {
                    None => Some(Provenance::Context(
                        source_path.trim_start_matches('/').to_owned(),
                    )),
                    Some(from) => {
                        let origin = self.stage(from)?;
                        // A stand-in covers RUN output even where a COPY laid the sources.
                        if let Some(stand_in) = stand_in_for(from, &source_path) {
                            return Some(Provenance::Built {
                                stage: stand_in.stage.to_owned(),
                                path: source_path,
                            });
                        }
                        self.provenance_in(origin, &source_path).or_else(|| {
                            (!origin.runs.is_empty()).then(|| Provenance::Built {
                                stage: from.clone(),
                                path: source_path,
                            })
                        })
                    }
                };
            }
        }
        None
    }
}

/// The image path `path` as the source of `copy` names it, when `copy` put it there.
fn copied_from(copy: &Copy, source: &str, path: &str) -> Option<String> {
    let dest = copy.dest.trim_end_matches('/');
    let path = path.trim_end_matches('/');
    // A folder source (written with a trailing slash, or `.`) copies its contents into dest;
    // a file source into a folder dest (trailing slash, or several sources) keeps its name.
    let is_folder = source.ends_with('/') || source == "." || context_is_folder(copy, source);
    let target = if is_folder {
        dest.to_owned()
    } else if copy.dest.ends_with('/') || copy.sources.len() > 1 {
        let name = source.trim_end_matches('/').rsplit('/').next()?;
        format!("{dest}/{name}")
    } else {
        dest.to_owned()
    };
    let rest = if path == target {
        ""
    } else {
        path.strip_prefix(&target)?.strip_prefix('/')?
    };
    let source = source.trim_end_matches('/');
    Some(match (source, rest) {
        (".", "") => "/".to_owned(),
        (".", rest) => rest.to_owned(),
        (source, "") => source.to_owned(),
        (source, rest) => format!("{source}/{rest}"),
    })
}

/// Whether a build-context source of `copy` is a folder in the repository.
fn context_is_folder(copy: &Copy, source: &str) -> bool {
    copy.from.is_none() && workspace_root().join(source).is_dir()
}

fn stand_in_for(stage: &str, path: &str) -> Option<&'static StandIn> {
    STAND_INS.iter().find(|stand_in| {
        stand_in.stage == stage
            && (path == stand_in.path.trim_end_matches('/') || path.starts_with(stand_in.path))
    })
}

/// One final image: a target of the Dockerfile.
#[derive(Clone, Copy)]
pub struct Image<'a> {
    pub dockerfile: &'a Dockerfile,
    pub stage: &'a Stage,
}

impl Image<'_> {
    /// Where `path` (absolute) of this image comes from, or `None` when nothing the Dockerfile
    /// does puts it there.
    pub fn provenance(&self, path: &str) -> Option<Provenance> {
        self.dockerfile.provenance_in(self.stage, path)
    }

    /// Whether the image holds `path` as far as the Dockerfile shows: copied from the build
    /// context (present in the repository and not excluded by `.dockerignore`), or made by a
    /// `RUN` that [`STAND_INS`] knows.
    pub fn holds(&self, path: &str) -> Result<(), String> {
        match self.provenance(path) {
            Some(Provenance::Context(source)) => {
                if !workspace_root().join(&source).exists() {
                    Err(format!(
                        "{path} is copied from {source}, which the repository lacks"
                    ))
                } else if dockerignore_excludes(&source) {
                    Err(format!(
                        "{path} is copied from {source}, which .dockerignore leaves out of the build context"
                    ))
                } else {
                    Ok(())
                }
            }
            Some(Provenance::Built { stage, path: made }) => match stand_in_for(&stage, &made) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "{path} would come from {made} made by a RUN of stage {stage}, which \
                     tests/src/dockerfile.rs (STAND_INS) does not know"
                )),
            },
            None => Err(format!("no COPY of {PATH} puts {path} into the image")),
        }
    }

    /// The local file or folder that stands in for image path `path`.
    pub fn local_path(&self, path: &str) -> anyhow::Result<PathBuf> {
        match self.provenance(path) {
            Some(Provenance::Context(source)) => Ok(workspace_root().join(source)),
            Some(Provenance::Built { stage, path: made }) => {
                let stand_in = stand_in_for(&stage, &made).with_context(|| {
                    format!(
                        "{path}: made by a RUN of stage {stage} ({made}); add its local \
                         equivalent to STAND_INS in tests/src/dockerfile.rs"
                    )
                })?;
                let base = (stand_in.local)()?;
                let rest = made
                    .strip_prefix(stand_in.path)
                    .or_else(|| made.strip_prefix(stand_in.path.trim_end_matches('/')))
                    .unwrap_or_default();
                Ok(if rest.is_empty() {
                    base
                } else {
                    base.join(rest)
                })
            }
            None => bail!("no COPY of {PATH} puts {path} into the image"),
        }
    }

    /// `ENV` of the image, in order.
    pub fn env(&self) -> &[(String, String)] {
        &self.stage.env
    }

    /// `USER` as `(uid, gid)`; the gid is `None` when USER names none.
    pub fn user_ids(&self) -> anyhow::Result<(u64, Option<u64>)> {
        let user = self
            .stage
            .user
            .as_deref()
            .context("no USER: the image runs as root")?;
        let (uid, gid) = match user.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (user, None),
        };
        let number = |text: &str| {
            text.parse::<u64>().with_context(|| {
                format!("USER {user}: not numeric, so Kubernetes cannot verify runAsNonRoot")
            })
        };
        Ok((number(uid)?, gid.map(number).transpose()?))
    }

    /// Files the image puts into `folder` (such as `/usr/local/bin`), by name.
    pub fn files_in(&self, folder: &str) -> Vec<String> {
        let folder = folder.trim_end_matches('/');
        self.stage
            .copies
            .iter()
            .flat_map(|copy| {
                copy.sources.iter().filter_map(move |source| {
                    let dest = copy.dest.trim_end_matches('/');
                    let name = if copy.dest.ends_with('/') || copy.sources.len() > 1 {
                        (dest == folder)
                            .then(|| source.trim_end_matches('/').rsplit('/').next())
                            .flatten()
                    } else {
                        dest.strip_prefix(folder)
                            .and_then(|rest| rest.strip_prefix('/'))
                            .filter(|rest| !rest.contains('/'))
                    };
                    name.map(str::to_owned)
                })
            })
            .collect()
    }
}

/// Whether `.dockerignore` at the repository root leaves `path` (relative to the root) out of
/// the build context: Docker's rules for the patterns it uses (`**/` for any depth, `*` within a
/// segment, a trailing `/`, `!` to re-include; the last matching pattern wins; a pattern that
/// matches a folder excludes what is inside it).
pub fn dockerignore_excludes(path: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(workspace_root().join(".dockerignore")) else {
        return false;
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut excluded = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (include, pattern) = match line.strip_prefix('!') {
            Some(pattern) => (true, pattern),
            None => (false, line),
        };
        let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
        let matched = (1..=segments.len()).any(|n| glob_segments(&pattern, &segments[..n]));
        if matched {
            excluded = !include;
        }
    }
    excluded
}

fn glob_segments(pattern: &[&str], path: &[&str]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(&"**"), _) => {
            glob_segments(&pattern[1..], path)
                || (!path.is_empty() && glob_segments(pattern, &path[1..]))
        }
        (Some(p), Some(s)) => glob(p, s) && glob_segments(&pattern[1..], &path[1..]),
        _ => false,
    }
}

/// `*` and `?` within one path segment.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .any(|i| glob(&pattern[1..], &text[i..])),
        Some(c) => {
            let mut rest = text.chars();
            match rest.next() {
                Some(t) if c == '?' || c == t => glob(&pattern[c.len_utf8()..], rest.as_str()),
                _ => false,
            }
        }
    }
}

/// The logical lines of a Dockerfile with their first physical line's number: continuations
/// joined, comment and empty lines dropped (also inside a continuation, as Docker does).
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        let entry = current.get_or_insert_with(|| (index + 1, String::new()));
        if !entry.1.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body.trim());
        if !continues && let Some(done) = current.take() {
            out.push(done);
        }
    }
    out.extend(current);
    out
}

fn split_arg(rest: &str) -> (String, Option<String>) {
    match rest.split_once('=') {
        Some((name, default)) => (name.trim().to_owned(), Some(unquote(default.trim()))),
        None => (rest.trim().to_owned(), None),
    }
}

fn unquote(text: &str) -> String {
    let quoted = text.len() >= 2
        && ((text.starts_with('"') && text.ends_with('"'))
            || (text.starts_with('\'') && text.ends_with('\'')));
    if quoted {
        text[1..text.len() - 1].to_owned()
    } else {
        text.to_owned()
    }
}

/// `ENV a=1 b="two words"` (or the old `ENV name value`) as pairs.
fn env_pairs(rest: &str) -> anyhow::Result<Vec<(String, String)>> {
    let words = shell_words(rest)?;
    if words.first().is_some_and(|word| !word.contains('=')) {
        let name = words[0].clone();
        let value = rest.trim_start()[name.len()..].trim().to_owned();
        return Ok(vec![(name, value)]);
    }
    words
        .into_iter()
        .map(|word| {
            word.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("ENV word {word:?} is not NAME=value"))
        })
        .collect()
}

/// Splits on unquoted whitespace; quotes group and are removed, `\` escapes one character.
fn shell_words(text: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                let escaped = chars.next().context("a trailing backslash")?;
                word.get_or_insert_with(String::new).push(escaped);
            }
            (_, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        bail!("an unclosed quote in {text:?}");
    }
    words.extend(word);
    Ok(words)
}

/// `["a", "b"]` as its strings; the shell form as `/bin/sh -c <text>`.
fn exec_form(rest: &str) -> anyhow::Result<Vec<String>> {
    if rest.trim_start().starts_with('[') {
        serde_json::from_str(rest).with_context(|| format!("{rest} is not a JSON array"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_owned()])
    }
}

/// `${NAME}`, `${NAME:-default}` and `$NAME` replaced by `lookup`.
fn substitute(text: &str, lookup: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(inner) = after.strip_prefix('{')
            && let Some(end) = inner.find('}')
        {
            let expression = &inner[..end];
            let value = match expression.split_once(":-") {
                Some((name, default)) => Some(lookup(name))
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| default.to_owned()),
                None => lookup(expression),
            };
            out.push_str(&value);
            rest = &inner[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..end]));
            }
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
ARG V=1.2
FROM debian AS base
USER 10:20
ENV A=x \
    # a comment inside a continuation
    B="two words"
FROM builder-image AS build
RUN make /out/tool
FROM base AS app
ARG V
COPY --from=build /out/tool /usr/local/bin/tool
COPY data/ /data/
ENV LIB=/opt/lib.so.${V}
EXPOSE 80 9000/tcp
ENTRYPOINT ["/usr/local/bin/tool"]
"#;

    #[test]
    fn stages_inherit_and_substitute() -> anyhow::Result<()> {
        let dockerfile = Dockerfile::parse(SAMPLE)?;
        let image = dockerfile.image("app").context("no app")?;
        assert_eq!(image.stage.env_value("B"), Some("two words"));
        assert_eq!(image.stage.env_value("LIB"), Some("/opt/lib.so.1.2"));
        assert_eq!(image.user_ids()?, (10, Some(20)));
        assert_eq!(image.stage.expose, BTreeSet::from([80, 9000]));
        assert_eq!(
            image.provenance("/usr/local/bin/tool"),
            Some(Provenance::Built {
                stage: "build".into(),
                path: "/out/tool".into()
            })
        );
        assert_eq!(
            image.provenance("/data/x/y"),
            Some(Provenance::Context("data/x/y".into()))
        );
        assert_eq!(image.provenance("/etc/passwd"), None);
        assert_eq!(image.files_in("/usr/local/bin"), vec!["tool".to_owned()]);
        Ok(())
    }

    #[test]
    fn unknown_instructions_are_refused() {
        assert!(Dockerfile::parse("FROM x AS y\nHEALTHCHECK CMD true\n").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_segments(
            &["**", "node_modules"],
            &["a", "b", "node_modules"]
        ));
        assert!(glob_segments(&["models", "train"], &["models", "train"]));
        assert!(!glob_segments(&["models", "train"], &["models"]));
        assert!(glob("*.md", "README.md"));
    }
}
