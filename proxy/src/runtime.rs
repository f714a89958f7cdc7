//! Sizing the tokio runtime from the CPU the process may actually use.
//!
//! On ECS the proxy is a sidecar with a fraction of a vCPU, enforced as a
//! cgroup CPU quota, while the host shows every core. A multi-thread
//! runtime with one worker per host core then pays for work stealing and
//! cross-thread wake-ups it cannot use: on one core the current-thread
//! runtime served 29,759 req/s against 22,968 (+30 %, issue 11). So, as
//! linkerd2-proxy sizes its runtime from its cores: a quota of one core or
//! less (or a single usable core) gets the current-thread runtime, anything
//! more a multi-thread runtime with `ceil(cores)` workers.
//!
//! The quota comes from cgroup v2 `cpu.max` (`"<quota> <period>"` or
//! `"max <period>"`) or cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`
//! (`-1`: no quota), for the process's own cgroup and each ancestor that is
//! visible (the tightest wins); a container whose cgroup is mounted as the
//! root sees its quota at the root.

use std::path::{Path, PathBuf};

/// Where cgroup hierarchies are mounted on Linux.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The runtime the proxy runs on, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    /// CPU quota in cores (`quota / period`); `None`: no quota found.
    pub quota: Option<f64>,
    /// Cores the scheduler lets this process run on (affinity).
    pub available: usize,
    /// Worker threads; 1 means the current-thread runtime.
    pub workers: usize,
}

impl Sizing {
    /// Decides from a quota (cores) and the cores available to the process.
    pub fn decide(quota: Option<f64>, available: usize) -> Self {
        let available = available.max(1);
        let cores = match quota {
            // ceil: 1.5 cores can keep two workers partly busy.
            Some(quota) => (quota.ceil() as usize).clamp(1, available),
            None => available,
        };
        Sizing {
            quota,
            available,
            workers: cores,
        }
    }

    /// Reads the quota of this process's cgroup and its available cores.
    pub fn detect() -> Self {
        let available = std::thread::available_parallelism().map_or(1, usize::from);
        let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Sizing::decide(cpu_quota(Path::new(CGROUP_ROOT), &membership), available)
    }

    pub fn current_thread(&self) -> bool {
        self.workers <= 1
    }

    /// Builds the runtime this sizing calls for.
    pub fn build(&self) -> std::io::Result<tokio::runtime::Runtime> {
        if self.current_thread() {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(self.workers)
                .enable_all()
                .build()
        }
    }
}

/// The tightest CPU quota, in cores, over the cgroups of `membership` (the
/// text of `/proc/self/cgroup`) under `root`; `None` when there is none.
pub fn cpu_quota(root: &Path, membership: &str) -> Option<f64> {
    let mut tightest: Option<f64> = None;
    let mut consider = |quota: Option<f64>| {
        if let Some(quota) = quota {
            tightest = Some(tightest.map_or(quota, |t| t.min(quota)));
        }
    };
    for line in membership.lines() {
        // "hierarchy-id:controllers:path"; v2 is "0::/path".
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            for dir in ancestors(root, path) {
                consider(read(&dir.join("cpu.max")).and_then(|text| parse_cpu_max(&text)));
            }
        } else if controllers.split(',').any(|c| c == "cpu") {
            for mount in ["cpu", "cpu,cpuacct", "cpuacct,cpu"] {
                for dir in ancestors(&root.join(mount), path) {
                    let quota = read(&dir.join("cpu.cfs_quota_us"));
                    let period = read(&dir.join("cpu.cfs_period_us"));
                    if let (Some(quota), Some(period)) = (quota, period) {
                        consider(parse_cfs(&quota, &period));
                    }
                }
            }
        }
    }
    tightest
}

/// `dir/path` and each of its parents up to `dir` itself.
fn ancestors(dir: &Path, path: &str) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    let mut current = dir.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != "..") {
        current.push(part);
        found.push(current.clone());
    }
    found
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// cgroup v2 `cpu.max`: `"50000 100000"` is half a core; `"max 100000"`
/// is no quota.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut fields = text.split_whitespace();
    let quota = fields.next()?;
    let period: f64 = fields.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    if quota == "max" {
        return None;
    }
    cores(quota.parse().ok()?, period)
}

/// cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`; a quota of `-1`
/// is no quota.
pub fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.trim().parse().ok()?;
    cores(quota, period.trim().parse().ok()?)
}

fn cores(quota: f64, period: f64) -> Option<f64> {
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch cgroup tree under the system temp dir.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "retainwise-cgroup-{name}-{}-{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Tree(dir)
        }

        fn write(&self, path: &str, text: &str) {
            let file = self.0.join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
            std::fs::write(file, text).expect("write");
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn cpu_max_is_parsed_as_cores() {
        assert_eq!(parse_cpu_max("50000 100000\n"), Some(0.5));
        assert_eq!(parse_cpu_max("150000 100000"), Some(1.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("lots 100000"), None);
        assert_eq!(parse_cpu_max("50000 0"), None);
    }

    #[test]
    fn cfs_files_are_parsed_as_cores() {
        assert_eq!(parse_cfs("25000\n", "100000\n"), Some(0.25));
        assert_eq!(parse_cfs("200000", "100000"), Some(2.0));
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("x", "100000"), None);
    }

    #[test]
    fn a_v1_quota_on_the_process_cgroup_is_found() {
        let tree = Tree::new("v1");
        tree.write("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
        tree.write("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        tree.write("cpu,cpuacct/ecs/task/cpu.cfs_quota_us", "50000\n");
        tree.write("cpu,cpuacct/ecs/task/cpu.cfs_period_us", "100000\n");
        let membership = "12:memory:/ecs/task\n3:cpu,cpuacct:/ecs/task\n1:name=systemd:/\n";
        assert_eq!(cpu_quota(&tree.0, membership), Some(0.5));
    }

    #[test]
    fn a_container_sees_its_quota_at_the_mount_root() {
        // Docker mounts the container's own cgroup as the root, while
        // /proc/self/cgroup still shows the host's path.
        let tree = Tree::new("container");
        tree.write("cpu/cpu.cfs_quota_us", "150000");
        tree.write("cpu/cpu.cfs_period_us", "100000");
        let membership = "4:cpu:/docker/0123abcd\n";
        assert_eq!(cpu_quota(&tree.0, membership), Some(1.5));
    }

    #[test]
    fn the_tightest_v2_quota_among_ancestors_wins() {
        let tree = Tree::new("v2");
        tree.write("cpu.max", "max 100000\n");
        tree.write("system.slice/cpu.max", "200000 100000\n");
        tree.write("system.slice/proxy.service/cpu.max", "max 100000\n");
        let membership = "0::/system.slice/proxy.service\n";
        assert_eq!(cpu_quota(&tree.0, membership), Some(2.0));
    }

    #[test]
    fn no_files_means_no_quota() {
        let tree = Tree::new("none");
        assert_eq!(cpu_quota(&tree.0, "0::/\n3:cpu:/x\n"), None);
        assert_eq!(cpu_quota(&tree.0, "garbage"), None);
    }

    #[test]
    fn a_core_or_less_runs_on_the_current_thread() {
        assert!(Sizing::decide(Some(0.5), 8).current_thread());
        assert!(Sizing::decide(Some(1.0), 8).current_thread());
        // One usable core (affinity), whatever the quota says.
        assert!(Sizing::decide(None, 1).current_thread());
        assert!(Sizing::decide(Some(4.0), 1).current_thread());
    }

    #[test]
    fn more_than_a_core_gets_ceil_workers_up_to_the_cores_available() {
        assert_eq!(Sizing::decide(Some(1.5), 8).workers, 2);
        assert_eq!(Sizing::decide(Some(2.0), 8).workers, 2);
        assert_eq!(Sizing::decide(Some(16.0), 4).workers, 4);
        assert_eq!(Sizing::decide(None, 4).workers, 4);
    }
}
