//! `tidebase-host build workflow.py -o workflow.wasm`: a Python workflow
//! compiled to a component by componentize-py, against the workflow WIT
//! world and the Python guest SDK, both carried in this binary.

use anyhow::{Context, bail};
use clap::Args;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The componentize-py release the guest SDK is tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// Names the componentize-py executable to use instead of the one on `PATH`.
pub const COMPONENTIZE_PY_ENV: &str = "TIDEBASE_COMPONENTIZE_PY";

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The workflow module (`.py`); modules next to it can be imported.
    #[arg(value_parser = super::absolute_path)]
    file: PathBuf,
    /// Where to write the component (default: the file with `.wasm`).
    #[arg(short, long, value_parser = super::absolute_path)]
    output: Option<PathBuf>,
}

/// The files componentize-py reads, by path under the build directory.
/// `wit/python.wit` adds `wasi:http` to the workflow world; the `wasi:*`
/// packages are those of the host's wasmtime-wasi-http.
const SOURCES: &[(&str, &str)] = &[
    (
        "wit/python.wit",
        include_str!("../../../guest-sdk/python/wit/python.wit"),
    ),
    (
        "wit/deps/tidebase-workflow/workflow.wit",
        include_str!("../../../wit/workflow.wit"),
    ),
    (
        "wit/deps/cli.wit",
        include_str!("../../../guest-sdk/python/wit/deps/cli.wit"),
    ),
    (
        "wit/deps/clocks.wit",
        include_str!("../../../guest-sdk/python/wit/deps/clocks.wit"),
    ),
    (
        "wit/deps/filesystem.wit",
        include_str!("../../../guest-sdk/python/wit/deps/filesystem.wit"),
    ),
    (
        "wit/deps/http.wit",
        include_str!("../../../guest-sdk/python/wit/deps/http.wit"),
    ),
    (
        "wit/deps/io.wit",
        include_str!("../../../guest-sdk/python/wit/deps/io.wit"),
    ),
    (
        "wit/deps/random.wit",
        include_str!("../../../guest-sdk/python/wit/deps/random.wit"),
    ),
    (
        "wit/deps/sockets.wit",
        include_str!("../../../guest-sdk/python/wit/deps/sockets.wit"),
    ),
    (
        "sdk/tidebase_guest/__init__.py",
        include_str!("../../../guest-sdk/python/tidebase_guest/__init__.py"),
    ),
    (
        "sdk/tidebase_guest/_component.py",
        include_str!("../../../guest-sdk/python/tidebase_guest/_component.py"),
    ),
    (
        "sdk/tidebase_guest/http.py",
        include_str!("../../../guest-sdk/python/tidebase_guest/http.py"),
    ),
];

/// The generated module componentize-py wraps: it imports the workflow
/// module (which registers its function) and then the SDK's export.
const ENTRY: &str = "tidebase_entry";

/// Module names the build itself uses.
const TAKEN: &[&str] = &[
    ENTRY,
    "tidebase_guest",
    "wit_world",
    "componentize_py_types",
];

pub async fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let module = module_name(&args.file)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.file.with_extension("wasm"));
    let exe = componentize_py()?;
    let dir = BuildDir::new()?;
    for (path, text) in SOURCES {
        dir.write(path, text)?;
    }
    dir.write(
        &format!("entry/{ENTRY}.py"),
        &format!("import {module}  # registers the workflow\nfrom tidebase_guest._component import WitWorld  # noqa: F401\n"),
    )?;
    let source_dir = args.file.parent().unwrap_or(Path::new("/"));
    eprintln!("building {} with componentize-py", args.file.display());
    let out = tokio::process::Command::new(&exe)
        .arg("-q")
        .arg("-d")
        .arg(dir.0.join("wit"))
        .args(["-w", "python-workflow", "componentize"])
        .arg("-p")
        .arg(source_dir)
        .arg("-p")
        .arg(dir.0.join("sdk"))
        .arg("-p")
        .arg(dir.0.join("entry"))
        .arg(ENTRY)
        .arg("-o")
        .arg(&output)
        // Its errors carry a Rust backtrace otherwise.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .await
        .with_context(|| format!("cannot run {}", exe.to_string_lossy()))?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!(
            "componentize-py could not build {} ({})",
            args.file.display(),
            out.status
        );
    }
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    eprintln!("built {} ({:.1} MB)", output.display(), size as f64 / 1e6);
    Ok(ExitCode::SUCCESS)
}

/// The module name of a workflow file, which componentize-py imports.
fn module_name(file: &Path) -> anyhow::Result<String> {
    if file.extension().and_then(|e| e.to_str()) != Some("py") {
        bail!("{} is not a Python file (expected NAME.py)", file.display());
    }
    if !file.is_file() {
        bail!("{} does not exist", file.display());
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let identifier = stem
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && stem.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !identifier {
        bail!(
            "{} cannot be imported as a Python module: name it like `my_workflow.py`",
            file.display()
        );
    }
    if TAKEN.contains(&stem) {
        bail!("{stem}.py clashes with a module of the build: rename the file");
    }
    Ok(stem.to_string())
}

/// The componentize-py executable: `$TIDEBASE_COMPONENTIZE_PY`, else the
/// one on `PATH`; missing, an error that says how to install it.
pub fn componentize_py() -> anyhow::Result<OsString> {
    let exe = std::env::var_os(COMPONENTIZE_PY_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "componentize-py".into());
    let version = Command::new(&exe).arg("--version").output();
    match version {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains(COMPONENTIZE_PY_VERSION) {
                eprintln!(
                    "warning: {} is not componentize-py {COMPONENTIZE_PY_VERSION}, the version the guest SDK is tested with",
                    text.trim()
                );
            }
            Ok(exe)
        }
        _ => bail!(
            "componentize-py was not found ({}). Building Python workflows needs it:\n\n    \
             pip install componentize-py=={COMPONENTIZE_PY_VERSION}\n\n\
             (into a virtualenv or with --user), or set {COMPONENTIZE_PY_ENV} to its path",
            exe.to_string_lossy()
        ),
    }
}

/// A private scratch directory, removed when dropped.
struct BuildDir(PathBuf);

impl BuildDir {
    fn new() -> anyhow::Result<BuildDir> {
        let name = format!(
            "tidebase-build-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(BuildDir(dir))
    }

    fn write(&self, path: &str, text: &str) -> anyhow::Result<()> {
        let file = self.0.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
