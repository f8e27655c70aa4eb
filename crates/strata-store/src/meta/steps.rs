//! What keyed each build step, kept to explain cache misses: per cache key,
//! the step's parent key, instruction text, definition and (separately, read
//! only when needed) a per-file list of its inputs; and per step of a build
//! (a scope such as "this context with this Dockerfile" and a step name
//! within it), the key it had last time. The store treats every value as
//! opaque text: it knows nothing of Dockerfiles.

use rusqlite::{params, OptionalExtension};

use super::Meta;
use crate::error::Result;
use crate::fsutil::now_secs;

/// One step's recorded definition (without its file list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepInfo {
    /// The cache key it was recorded under.
    pub key: String,
    /// The parent step's key; `None` for a stage's base.
    pub parent: Option<String>,
    /// The instruction, as shown to the user.
    pub instruction: String,
    /// The engine's JSON.
    pub def: String,
}

impl Meta {
    /// Records (or replaces) what keyed `info.key`, with its file list.
    pub fn step_put(&self, info: &StepInfo, files: Option<&str>) -> Result<()> {
        self.write("record build step", |tx| {
            tx.execute(
                "INSERT INTO cache_steps (key, parent, instruction, def, files, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(key) DO UPDATE SET parent = ?2, instruction = ?3, def = ?4,
                     files = ?5, created = ?6",
                params![
                    info.key,
                    info.parent,
                    info.instruction,
                    info.def,
                    files,
                    now_secs()
                ],
            )?;
            Ok(())
        })
    }

    /// Whether a step row exists for `key`.
    pub fn step_exists(&self, key: &str) -> Result<bool> {
        self.with_conn("read build step", |c| {
            c.query_row(
                "SELECT 1 FROM cache_steps WHERE key = ?1",
                [key],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
    }

    /// The step recorded under `key`.
    pub fn step_get(&self, key: &str) -> Result<Option<StepInfo>> {
        self.with_conn("read build step", |c| {
            c.query_row(
                "SELECT key, parent, instruction, def FROM cache_steps WHERE key = ?1",
                [key],
                step_row,
            )
            .optional()
        })
    }

    /// The most recently recorded step with this parent and instruction
    /// (other than `except`, the key being looked for).
    pub fn step_find(
        &self,
        parent: &str,
        instruction: &str,
        except: &str,
    ) -> Result<Option<StepInfo>> {
        self.with_conn("find build step", |c| {
            c.query_row(
                "SELECT key, parent, instruction, def FROM cache_steps
                 WHERE parent = ?1 AND instruction = ?2 AND key <> ?3
                 ORDER BY created DESC, rowid DESC LIMIT 1",
                params![parent, instruction, except],
                step_row,
            )
            .optional()
        })
    }

    /// The file list recorded with `key`'s step, if any.
    pub fn step_files(&self, key: &str) -> Result<Option<String>> {
        self.with_conn("read build step files", |c| {
            c.query_row("SELECT files FROM cache_steps WHERE key = ?1", [key], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
        })
    }

    /// The key `step` of `scope` had at its last build.
    pub fn step_last_key(&self, scope: &str, step: &str) -> Result<Option<String>> {
        self.with_conn("read step history", |c| {
            c.query_row(
                "SELECT key FROM step_history WHERE scope = ?1 AND step = ?2",
                params![scope, step],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Notes the key `step` of `scope` has now.
    pub fn step_set_last_key(&self, scope: &str, step: &str, key: &str) -> Result<()> {
        self.step_set_last_keys(scope, &[step], key)
    }

    /// Notes the key each of `steps` (names of one step) of `scope` has
    /// now, in one transaction.
    pub fn step_set_last_keys(&self, scope: &str, steps: &[&str], key: &str) -> Result<()> {
        self.write("write step history", |tx| {
            let now = now_secs();
            for step in steps {
                tx.execute(
                    "INSERT INTO step_history (scope, step, key, updated) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(scope, step) DO UPDATE SET key = ?3, updated = ?4",
                    params![scope, step, key, now],
                )?;
            }
            Ok(())
        })
    }

    /// Forgets every step row and the step history (with the whole cache).
    pub(crate) fn steps_clear(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute("DELETE FROM cache_steps", [])?;
        tx.execute("DELETE FROM step_history", [])?;
        Ok(())
    }
}

fn step_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StepInfo> {
    Ok(StepInfo {
        key: r.get(0)?,
        parent: r.get(1)?,
        instruction: r.get(2)?,
        def: r.get(3)?,
    })
}
