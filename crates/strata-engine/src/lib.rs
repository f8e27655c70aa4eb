//! strata-engine: the solver. It schedules a frontend `Plan` as a DAG,
//! computes cache keys, executes steps (RUN through the runtime, COPY/ADD as
//! file operations) and reports progress events.
