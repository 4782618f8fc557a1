//! What autoscaling measures of a task's processes: CPU time and resident memory of its
//! process group, read from `/proc` (a task leads its own group, and what it starts stays in
//! it, so a worker process it forks is counted too).

use std::collections::HashMap;
use std::fs;

/// Linux reports CPU times in USER_HZ, which the user ABI fixes at 100 on every
/// architecture (`sysconf(_SC_CLK_TCK)` answers it).
pub const TICKS_PER_SECOND: u64 = 100;

/// One process group's usage now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupUsage {
    /// User and system CPU time of its live processes, plus what they collected from
    /// children that exited (`cutime`, `cstime`), in ticks.
    pub cpu_ticks: u64,
    /// Resident memory of its live processes, bytes.
    pub rss_bytes: u64,
}

/// The usage of each process group in `groups` (by group id, a task's leader pid); a group
/// with no live process is absent.
pub fn groups_usage(groups: &[u32]) -> HashMap<u32, GroupUsage> {
    let mut usage: HashMap<u32, GroupUsage> = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return usage;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process that exits meanwhile is simply not counted.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(fields) = parse_stat(&stat) else {
            continue;
        };
        if !groups.contains(&fields.pgrp) {
            continue;
        }
        let rss_kib = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| vm_rss_kib(&status))
            .unwrap_or(0);
        let group = usage.entry(fields.pgrp).or_default();
        group.cpu_ticks += fields.ticks;
        group.rss_bytes += rss_kib * 1024;
    }
    usage
}

struct StatFields {
    pgrp: u32,
    ticks: u64,
}

/// `/proc/<pid>/stat`: the command name is in parentheses and may hold spaces or `)`, so
/// fields are counted after the last `)`: state, ppid, pgrp, ..., utime (14th field of the
/// line), stime, cutime, cstime.
fn parse_stat(stat: &str) -> Option<StatFields> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(StatFields {
        pgrp: u32::try_from(number(2)?).ok()?,
        ticks: number(11)? + number(12)? + number(13)? + number(14)?,
    })
}

/// `VmRSS:   1234 kB` from `/proc/<pid>/status` (kernel threads have none).
fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "4242 (a) b (c)) S 1 4240 4240 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5 1000 50 18446744073709551615";
        let fields = parse_stat(stat).unwrap();
        assert_eq!(fields.pgrp, 4240);
        assert_eq!(fields.ticks, 7 + 3 + 2 + 1);
    }

    #[test]
    fn rss_comes_from_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t  1234 kB\n";
        assert_eq!(vm_rss_kib(status), Some(1234));
        assert_eq!(vm_rss_kib("Name:\tkthreadd\n"), None);
    }

    /// A busy loop in its own process group (as a task runs): its CPU time grows, and a
    /// sleeping group beside it is counted apart.
    #[test]
    fn a_busy_group_accumulates_cpu_time() {
        use std::os::unix::process::CommandExt;
        let spawn = |script: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let mut busy = spawn("while :; do :; done");
        let mut idle = spawn("sleep 600");
        let (b, i) = (busy.id(), idle.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut seen = None;
        while std::time::Instant::now() < deadline {
            let usage = groups_usage(&[b, i]);
            if usage.get(&b).is_some_and(|u| u.cpu_ticks > 0) {
                seen = Some(usage);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The whole group, as berth stops a task: `sh` may have forked its command.
        for child in [&mut busy, &mut idle] {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
        let usage = seen.expect("the busy group's CPU time to grow");
        assert!(usage[&b].rss_bytes > 0);
        assert!(usage.contains_key(&i), "{usage:?}");
    }

    #[test]
    fn this_process_group_uses_memory() {
        let group = rustix::process::getpgrp().as_raw_pid() as u32;
        let usage = groups_usage(&[group]);
        assert!(usage.get(&group).is_some_and(|u| u.rss_bytes > 0));
    }
}
