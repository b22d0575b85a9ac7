//! Figures: latency percentiles and the server's resident memory.

use std::time::Duration;

/// The resident set of process `pid`, in KiB (`VmRSS` of `/proc/PID/status`).
pub(crate) fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `label p50 … p99 … max …` of latencies in microseconds.
pub(crate) fn latency(label: &str, mut micros: Vec<u64>) -> String {
    if micros.is_empty() {
        return format!("{label}: no samples");
    }
    micros.sort_unstable();
    let at = |q: f64| {
        // Nearest rank: the smallest sample with at least q of all samples at or below it.
        let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
        micros[rank - 1]
    };
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "{label}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(micros[micros.len() - 1]),
        micros.len()
    )
}

/// A count over a duration, per second.
pub(crate) fn rate(count: usize, over: Duration) -> f64 {
    count as f64 / over.as_secs_f64().max(f64::EPSILON)
}

/// The server's memory line.
pub(crate) fn memory(pid: Option<u32>, before: Option<u64>) -> String {
    match (rss_kib(pid), before) {
        (Some(now), Some(before)) => format!(
            "server RSS: {:.1} MiB (before the run {:.1} MiB)",
            now as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        (Some(now), None) => format!("server RSS: {:.1} MiB", now as f64 / 1024.0),
        _ => "server RSS: unknown (give --pid)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let line = latency("x", (1..=100).map(|ms| ms * 1000).collect());
        assert!(line.contains("p50 50.00 ms"), "{line}");
        assert!(line.contains("p99 99.00 ms"), "{line}");
        assert!(line.contains("max 100.00 ms"), "{line}");
        assert_eq!(latency("x", vec![]), "x: no samples");
    }
}
