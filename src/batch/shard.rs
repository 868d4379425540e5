//! The shard of a Slurm job array task: `sbatch --array=1-N` starts N tasks
//! of one script, each with `SLURM_ARRAY_TASK_ID` (its index),
//! `SLURM_ARRAY_TASK_MIN` (the lowest index) and `SLURM_ARRAY_TASK_COUNT`
//! (how many tasks). Task `ID` of such an array is shard
//! `K/N = (ID - MIN + 1)/COUNT`, so an array over the same list runs every
//! pair once, as `--shard 1/N` .. `--shard N/N` would, whatever the first
//! index (`--array=0-3` works as well as `--array=1-4`).
//!
//! Index lists with gaps (`--array=1,3`, `--array=1-9:2`) do not map onto
//! shards of one list and are refused: resubmit the whole range instead;
//! finished pairs are skipped in a moment.

use super::Shard;
use crate::error::{Error, Result};

/// The environment variables read, in the order of the error messages.
pub const SLURM_VARS: [&str; 3] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
];

/// The shard of the Slurm array task described by `var` (the environment,
/// or a test's table): `Ok(None)` outside a job array (no
/// `SLURM_ARRAY_TASK_ID`), an error when the variables do not describe a
/// task of a contiguous array.
pub fn from_slurm_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
    let Some(id) = var(SLURM_VARS[0]) else {
        return Ok(None);
    };
    let num = |name: &str, v: Option<String>| -> Result<i64> {
        let v = v.ok_or_else(|| {
            Error::invalid(format!(
                "{} is set ({id}) but {name} is not: not a Slurm job array task? \
                 Give --shard K/N",
                SLURM_VARS[0]
            ))
        })?;
        v.trim().parse::<i64>().map_err(|_| {
            Error::invalid(format!(
                "{name}={v:?} is not an integer: cannot take the shard from Slurm; give --shard K/N"
            ))
        })
    };
    let task = num(SLURM_VARS[0], Some(id.clone()))?;
    let min = num(SLURM_VARS[1], var(SLURM_VARS[1]))?;
    let count = num(SLURM_VARS[2], var(SLURM_VARS[2]))?;
    if count < 1 {
        return Err(Error::invalid(format!(
            "SLURM_ARRAY_TASK_COUNT={count}: a job array has at least one task"
        )));
    }
    let k = task - min + 1;
    if k < 1 || k > count {
        return Err(Error::invalid(format!(
            "Slurm array task {task} of {count} tasks from index {min} is not shard K/N with \
             K = ID - MIN + 1 <= N = COUNT: the array's indices have gaps (e.g. --array=1,3 or \
             --array=1-9:2); submit a contiguous range (--array=1-N; finished pairs are \
             skipped) or give --shard K/N"
        )));
    }
    Ok(Some(Shard {
        k: k as usize,
        n: count as usize,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn task(id: &str, min: &str, count: &str) -> Result<Option<Shard>> {
        from_slurm_env(env(&[
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", min),
            ("SLURM_ARRAY_TASK_COUNT", count),
        ]))
    }

    #[test]
    fn no_array_no_shard() {
        assert_eq!(from_slurm_env(env(&[])).unwrap(), None);
        // A plain job (no array) has SLURM_JOB_ID but no task id.
        assert_eq!(from_slurm_env(env(&[("SLURM_JOB_ID", "7")])).unwrap(), None);
    }

    #[test]
    fn array_tasks_map_to_every_shard_once() {
        for (min, count) in [(1, 1), (1, 3), (0, 4), (5, 2)] {
            let shards: Vec<Shard> = (min..min + count)
                .map(|id| {
                    task(&id.to_string(), &min.to_string(), &count.to_string())
                        .unwrap()
                        .unwrap()
                })
                .collect();
            for (i, s) in shards.iter().enumerate() {
                assert_eq!(
                    *s,
                    Shard {
                        k: i + 1,
                        n: count as usize
                    }
                );
            }
            for pair in 0..11 {
                assert_eq!(shards.iter().filter(|s| s.takes(pair)).count(), 1);
            }
        }
        assert_eq!(task("3", "1", "3").unwrap(), Some(Shard { k: 3, n: 3 }));
    }

    #[test]
    fn gaps_and_garbage_are_refused_clearly() {
        // --array=1,3: MIN 1, COUNT 2, task 3 would be shard 3/2.
        let e = task("3", "1", "2").unwrap_err().to_string();
        assert!(e.contains("gaps") && e.contains("--array=1-N"), "{e}");
        let e = task("0", "1", "2").unwrap_err().to_string();
        assert!(e.contains("gaps"), "{e}");
        let e = task("x", "1", "2").unwrap_err().to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID=\"x\" is not an integer"),
            "{e}"
        );
        let e = task("1", "1", "0").unwrap_err().to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_COUNT=0"), "{e}");
        let e = from_slurm_env(env(&[("SLURM_ARRAY_TASK_ID", "2")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_MIN is not"), "{e}");
    }
}
