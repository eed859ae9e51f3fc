//! Every subprocess xtask starts goes through here, and each runs under a limit: the running
//! stage's deadline (itself cut to what is left of the whole run's budget), and for commands
//! that should be quick, a limit of their own. Past it the command is killed with everything
//! it started, and the error names the command, so no stage and no helper can hang a CI run.

use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The running stage's name, its limit, and when it must be over.
pub(crate) static STAGE_DEADLINE: Mutex<Option<(&'static str, Duration, Instant)>> = Mutex::new(None);

/// Runs `command` with the terminal's output, under the stage deadline; fails on a non-zero
/// exit.
pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = run_to_end(command, None)?;
    if status.success() { Ok(()) } else { Err(format!("{shown} failed ({status})")) }
}

/// Like [`run`], also under a limit of its own.
pub(crate) fn run_within(command: &mut Command, limit: Duration) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = run_to_end(command, Some(limit))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} failed ({status})")) }
}

/// Runs `command` with its stdout and stderr both written to `log` (a file, so a chatty
/// command can never block on a full pipe); returns its exit status. The stage deadline holds.
pub(crate) fn run_logged(command: &mut Command, log: &std::path::Path) -> Result<ExitStatus, String> {
    let file = std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let copy = file.try_clone().map_err(|e| e.to_string())?;
    run_to_end(command.stdout(file).stderr(copy), None)
}

/// Runs `command` to its end and returns what it printed, under `limit` and the stage
/// deadline. Output goes through temporary files, never pipes, so a command that prints a lot
/// cannot block while nobody reads.
pub(crate) fn output(command: &mut Command, limit: Duration) -> Result<Output, String> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("xtask-{}-{n}", std::process::id()));
    let (out_path, err_path) = (base.with_extension("out"), base.with_extension("err"));
    let create =
        |path: &std::path::Path| std::fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()));
    let (out, err) = (create(&out_path)?, create(&err_path)?);
    let status = run_to_end(command.stdin(Stdio::null()).stdout(out).stderr(err), Some(limit));
    let read = |path: &std::path::Path| std::fs::read(path).unwrap_or_default();
    let (stdout, stderr) = (read(&out_path), read(&err_path));
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    Ok(Output { status: status?, stdout, stderr })
}

fn run_to_end(command: &mut Command, limit: Option<Duration>) -> Result<ExitStatus, String> {
    let shown = format!("{command:?}");
    println!("$ {shown}");
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("could not start {shown}: {e}"))?;
    let stage = *STAGE_DEADLINE.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait for {shown}: {e}"))? {
            return Ok(status);
        }
        let now = Instant::now();
        let overrun = match (stage, limit) {
            (Some((stage, stage_limit, at)), _) if now >= at => Some(format!(
                "was still running when the {stage} stage's limit of {} s (or the run's overall budget) ran out",
                stage_limit.as_secs()
            )),
            (_, Some(limit)) if now >= started + limit => {
                Some(format!("was still running after its own limit of {} s", limit.as_secs()))
            }
            _ => None,
        };
        if let Some(why) = overrun {
            let killed = kill_tree(child.id());
            let _ = child.wait();
            return Err(format!(
                "{shown} {why}; killed it and {killed} process(es) it started. The last test or step printed above \
                 is the one that hung."
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills `root` and every process descended from it (found through /proc, so the processes
/// stay in our process group and a Ctrl-C still reaches them); returns how many descendants.
fn kill_tree(root: u32) -> usize {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name is in parentheses and may hold spaces: the ppid follows the last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    for pid in tree.iter().rev() {
        // SIGKILL by the kernel's own call would need libc; `kill` is always there and is
        // itself bounded (it never blocks).
        let _ =
            Command::new("kill").args(["-KILL", &pid.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
    tree.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both tests touch the process-wide stage deadline; they must not interleave.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn survivors(marker: &str) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("cmdline")).ok())
            .filter(|cmdline| cmdline.contains(marker))
            .count()
    }

    #[test]
    fn a_command_past_its_stage_deadline_is_killed_with_everything_it_started() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        *STAGE_DEADLINE.lock().unwrap() =
            Some(("test", Duration::from_millis(300), Instant::now() + Duration::from_millis(300)));
        // A shell whose child would outlive it: the grandchild must die too. A duration only
        // this test uses, to find the grandchild in /proc afterwards.
        let marker = format!("300.{}", std::process::id());
        let mut command = Command::new("sh");
        command.args(["-c", &format!("sleep {marker} & wait")]);
        let started = Instant::now();
        let error = run(&mut command).unwrap_err();
        *STAGE_DEADLINE.lock().unwrap() = None;
        assert!(error.contains("the test stage's limit"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(survivors(&marker), 0, "a descendant outlived the kill");
    }

    #[test]
    fn a_captured_command_past_its_own_limit_is_killed_and_a_quick_one_is_read_whole() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let marker = format!("301.{}", std::process::id());
        let started = Instant::now();
        let error =
            output(Command::new("sh").args(["-c", &format!("sleep {marker} & wait")]), Duration::from_millis(300))
                .unwrap_err();
        assert!(error.contains("its own limit of 0 s"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(survivors(&marker), 0, "a descendant outlived the kill");

        let printed =
            output(Command::new("sh").args(["-c", "seq 1 100000; echo oops >&2"]), Duration::from_secs(30)).unwrap();
        assert!(printed.status.success());
        assert_eq!(String::from_utf8_lossy(&printed.stdout).lines().count(), 100_000);
        assert_eq!(String::from_utf8_lossy(&printed.stderr), "oops\n");
    }
}
