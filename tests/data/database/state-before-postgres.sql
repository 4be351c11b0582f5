-- The state file's schema as zone-publisher wrote it before [state] url existed (commit 1b15b25):
-- jobs, runs, outbox, forge and zone state, with a few rows; tests/test_database.py migrates it.
-- publisher/service/jobs.py
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repository TEXT NOT NULL,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL DEFAULT '',
    ref TEXT,
    commit_sha TEXT,
    state TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    finished REAL,
    claimed_by TEXT,
    run_id INTEGER,
    error TEXT,
    lease_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, repository);
CREATE TABLE IF NOT EXISTS job_deliveries (
    delivery_key TEXT PRIMARY KEY,
    job_id INTEGER,
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS job_deliveries_received ON job_deliveries(received);
CREATE TABLE IF NOT EXISTS published_commits (
    repository TEXT PRIMARY KEY,
    commit_sha TEXT NOT NULL,
    published REAL NOT NULL
);
-- publisher/service/runs.py
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER,
    repository TEXT NOT NULL,
    trigger TEXT NOT NULL,
    sender TEXT NOT NULL DEFAULT '',
    commit_sha TEXT,
    author_name TEXT NOT NULL DEFAULT '',
    author_email TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    timings TEXT NOT NULL DEFAULT '{}',
    findings TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    plan_markdown TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS run_zones (
    run_id INTEGER NOT NULL,
    zone TEXT NOT NULL,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    changes TEXT NOT NULL DEFAULT '[]',
    findings TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS run_zones_run ON run_zones(run_id);
CREATE INDEX IF NOT EXISTS run_zones_zone ON run_zones(zone, provider, run_id);
-- publisher/service/notify.py
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    run_id INTEGER,
    destination TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    sent REAL,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(sent, next_attempt);
-- publisher/service/forge.py
CREATE TABLE IF NOT EXISTS forge_job_commits (
    job_id INTEGER NOT NULL,
    commit_sha TEXT NOT NULL,
    context TEXT NOT NULL,
    PRIMARY KEY (job_id, commit_sha, context)
);
CREATE TABLE IF NOT EXISTS forge_comments (
    request TEXT PRIMARY KEY,
    comment_id TEXT NOT NULL,
    version INTEGER,
    updated REAL NOT NULL
);
-- publisher/publish/state.py
CREATE TABLE IF NOT EXISTS published_zones (
    provider   TEXT NOT NULL,
    zone       TEXT NOT NULL,
    serial     INTEGER NOT NULL,
    soa        TEXT NOT NULL,
    records    BLOB NOT NULL,
    count      INTEGER NOT NULL,
    applied_at REAL NOT NULL,
    PRIMARY KEY (provider, zone)
);
-- rows
INSERT INTO jobs (repository, kind, sender, commit_sha, state, created, updated, finished, run_id, lease_until, attempts)
  VALUES ('example/dns#main', 'push', 'github', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'done', 100, 110, 110, 1, NULL, 1);
INSERT INTO jobs (repository, kind, sender, commit_sha, state, created, updated)
  VALUES ('example/dns#main', 'push', 'github', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'queued', 200, 200);
INSERT INTO job_deliveries (delivery_key, job_id, received) VALUES ('github:d1', 1, 100);
INSERT INTO published_commits (repository, commit_sha, published) VALUES ('example/dns#main', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 110);
INSERT INTO runs (job_id, repository, trigger, status, started, finished, commit_sha, subject)
  VALUES (1, 'example/dns#main', 'push', 'ok', 101, 110, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'first zones');
INSERT INTO run_zones (run_id, zone, provider, status) VALUES (1, 'zulu.example.', 'primary', 'applied');
INSERT INTO run_zones (run_id, zone, provider, status) VALUES (1, 'alpha.example.', 'primary', 'unchanged');
INSERT INTO outbox (kind, run_id, destination, payload, created, next_attempt)
  VALUES ('mail', 1, '["ops@example.org"]', X'5375626a6563743a2078', 110, 110);
INSERT INTO forge_job_commits (job_id, commit_sha, context) VALUES (2, 'cccccccccccccccccccccccccccccccccccccccc', 'dns');
INSERT INTO forge_job_commits (job_id, commit_sha, context) VALUES (2, 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'dns');
INSERT INTO published_zones (provider, zone, serial, soa, records, count, applied_at)
  VALUES ('primary', 'zulu.example.', 4294967295, '', X'789c030000000001', 0, 110);
