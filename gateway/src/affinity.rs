//! Worker threads pinned to CPUs (`pin_workers`). With one worker per CPU, a pinned worker
//! keeps its CPU's caches and is never stacked onto another worker's CPU by the scheduler; on
//! a busy 2-core machine that cut HTTP proxying's p99 from 4.3 to about 1.1 ms
//! (docs/benchmarks.md).
//! `auto` pins only when the workers match the CPUs the process may use exactly and no CPU
//! quota is lower (a container limited by quota rather than by cpuset shares its CPUs with
//! others: pinning there would crowd two CPUs and leave the rest idle).

use crate::config::PinWorkers;

/// The CPU of each worker (by worker number − 1, modulo), or `None` to leave them unpinned.
/// `workers`: worker threads in all, over `listeners` listeners. `auto` wants one listener:
/// with several, each listener's workers would be confined to a share of the CPUs.
pub fn plan(mode: PinWorkers, workers: usize, listeners: usize) -> Option<Vec<usize>> {
    let allowed = allowed_cpus()?;
    let usable = std::thread::available_parallelism().map_or(1, usize::from);
    match mode {
        PinWorkers::Never => None,
        PinWorkers::Always => (!allowed.is_empty()).then_some(allowed),
        PinWorkers::Auto => {
            let one_per_cpu = workers > 1 && workers == allowed.len() && usable == allowed.len();
            (listeners == 1 && one_per_cpu).then_some(allowed)
        }
    }
}

/// The CPUs this process may run on (its affinity mask).
fn allowed_cpus() -> Option<Vec<usize>> {
    core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|id| id.id).collect())
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(format!("sched_setaffinity to CPU {cpu} failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_worker_per_usable_cpu_is_pinned_by_default() {
        let Some(allowed) = allowed_cpus() else {
            return;
        };
        let n = allowed.len();
        assert_eq!(plan(PinWorkers::Never, n, 1), None);
        assert_eq!(plan(PinWorkers::Always, 1, 1).map(|p| p.len()), Some(n));
        assert_eq!(
            plan(PinWorkers::Auto, n + 1, 1),
            None,
            "more workers than CPUs"
        );
        assert_eq!(
            plan(PinWorkers::Auto, 1, 1),
            None,
            "a lone worker is left alone"
        );
        let usable = std::thread::available_parallelism().map_or(1, usize::from);
        if n > 1 && usable == n {
            assert_eq!(
                plan(PinWorkers::Auto, n, 2),
                None,
                "two listeners would split the CPUs"
            );
            assert_eq!(plan(PinWorkers::Auto, n, 1), Some(allowed));
        }
    }
}
