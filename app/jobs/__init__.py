"""Periodic jobs and the runner that runs them: work that happens on a clock, not in answer to a request.

registry.py  the jobs: each has a name, how often a process looks (from the config) and what it runs
runner.py    the runner: a daemon thread per process (beside the outbox worker) that wakes every
             JOBS_TICK_SECONDS and runs the jobs that are due; one process at a time per job (a PostgreSQL
             advisory lock); a failing job is logged and tried again at its next interval
estimates.py the estimated-delivery refresh (`estimates.refresh`)
locations.py the purge of courier positions past their retention (`locations.purge`)
dispatch.py  dispatch runs: the schedule's slots made, queued runs solved and written (`dispatch.plan`)
cli.py       flask jobs list | run-once | runner

A job's interval is only how often a process looks. What is due in the business sense (a stale table, a dispatch
window, a non-delivery timer) lives in the database and is read by the job (design rule 13), so a restart or
another process never loses or repeats it.
"""
