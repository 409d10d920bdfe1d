"""The library database's tables, one schema for SQLite and PostgreSQL, applied as migrations.

Every change is additive: a newer Plinth opens an older database and brings it up to this schema,
keeping its rows. `migrations()` derives the ordered, versioned list both engines apply (and
record in `schema_migrations`): version 1 creates the tables of SCHEMA, then one version per
entry of ADDED_COLUMNS, in order. Written in SQLite's dialect; webapp/db_sql.py turns it into
PostgreSQL's (REAL -> DOUBLE PRECISION, INTEGER -> BIGINT, AUTOINCREMENT -> an identity column).

To change the schema: add a new table to SCHEMA (CREATE TABLE IF NOT EXISTS), or append a
column to the END of ADDED_COLUMNS (never in the middle, never change one that was released);
an index on an added column goes in COLUMN_INDEXES. Every migration must be safe to run twice.
"""

import hashlib
from dataclasses import dataclass

#: Indexes created right after their column is added (a column in ADDED_COLUMNS does not exist
#: yet when SCHEMA runs on an older database).
COLUMN_INDEXES = {
    ("models", "model_id"): ("CREATE UNIQUE INDEX IF NOT EXISTS models_model_id ON models (model_id)",),
}

#: The record of what was applied (its own, fixed definition: it is read before anything else).
MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,          -- what the version is: a changed name means the code's list changed
    applied    REAL NOT NULL           -- unix time
)
"""


@dataclass(frozen=True)
class Migration:
    """One step of the schema. `column` (table, column, declaration) is added when missing, then
    `statements` run; both are idempotent, so a step that runs again changes nothing."""

    version: int
    name: str
    statements: tuple[str, ...] = ()
    column: tuple[str, str, str] | None = None


def migrations() -> tuple[Migration, ...]:
    """The ordered list, derived from SCHEMA and ADDED_COLUMNS. Version 1's name carries a digest of
    SCHEMA, so a table added there later re-runs it (CREATE TABLE IF NOT EXISTS) on databases
    that had the older list."""
    digest = hashlib.sha256(SCHEMA.encode()).hexdigest()[:12]
    steps = [Migration(1, f"tables {digest}", (SCHEMA,))]
    for i, (table, column, declaration) in enumerate(ADDED_COLUMNS):
        steps.append(Migration(2 + i, f"{table}.{column}", COLUMN_INDEXES.get((table, column), ()),
                               (table, column, declaration)))
    return tuple(steps)


SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    share_id   TEXT PRIMARY KEY,
    folder     TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    placement  TEXT NOT NULL DEFAULT 'floor',
    created    REAL NOT NULL,
    width_m    REAL NOT NULL,
    height_m   REAL NOT NULL,
    depth_m    REAL NOT NULL,
    glb_bytes  INTEGER NOT NULL DEFAULT 0,
    triangles  INTEGER NOT NULL DEFAULT 0,
    kind       TEXT NOT NULL DEFAULT '',
    report     TEXT NOT NULL DEFAULT '{}',
    job_id     TEXT,
    published_anyway INTEGER NOT NULL DEFAULT 0,  -- 1: the merchant chose to share a model that failed its checks
    deleted_at REAL  -- set: in the Trash since then (files kept, share link answers "no longer available")
);
CREATE TABLE IF NOT EXISTS shops (
    shop_id    TEXT PRIMARY KEY,       -- 'default' (one shop per server) until shops are per merchant
    name       TEXT NOT NULL DEFAULT '',
    website    TEXT NOT NULL DEFAULT '',
    logo       TEXT NOT NULL DEFAULT '',  -- file name under data/shop/<shop_id>/, '' for none
    updated    REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,          -- queued | running | cancelling | done | failed | cancelled
    created    REAL NOT NULL,
    started    REAL,
    finished   REAL,
    name       TEXT NOT NULL,
    options    TEXT NOT NULL,          -- JSON: pipeline.Options.to_dict() (older rows: kind, placement,
                                       -- size_axis, size_m, quality, texture_size; both are read)
    photo_dir  TEXT NOT NULL,
    stage      TEXT NOT NULL DEFAULT '',
    fraction   REAL NOT NULL DEFAULT 0,
    message    TEXT NOT NULL DEFAULT '',
    error      TEXT NOT NULL DEFAULT '',
    share_id   TEXT,
    device     TEXT,
    pid        INTEGER,
    verdict    TEXT NOT NULL DEFAULT '',  -- done jobs: the quality gate's verdict on the model ('' before the gate)
    photo_names TEXT NOT NULL DEFAULT '[]',  -- JSON: the merchant's own file names, in the photos' order
    retried_as TEXT  -- the job that took over this one's photos (Try again with changes)
);
CREATE TABLE IF NOT EXISTS users (
    id         TEXT PRIMARY KEY,       -- random, never shown; models.owner and jobs.owner hold it
    email      TEXT NOT NULL UNIQUE,   -- lower-cased
    name       TEXT NOT NULL DEFAULT '',
    role       TEXT NOT NULL,          -- owner | merchant (accounts.Role)
    password   TEXT NOT NULL,          -- Argon2id hash
    created    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,       -- SHA-256 of the cookie's token; the token itself is never stored
    user_id    TEXT NOT NULL,
    created    REAL NOT NULL,
    expires    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS login_attempts (  -- failed sign-ins, for the lockout (webapp/signin.py)
    key        TEXT NOT NULL,          -- 'email:<address>' or 'ip:<client address>'
    at         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_key ON login_attempts (key, at);
CREATE TABLE IF NOT EXISTS invites (   -- a merchant the owner invited, until they choose a password
    code_hash  TEXT PRIMARY KEY,       -- SHA-256 of the invite link's code; the code itself is never stored
    email      TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    created    REAL NOT NULL,
    expires    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id         TEXT PRIMARY KEY,       -- random, shown in no list (the prefix is)
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    prefix     TEXT NOT NULL,          -- the token's first characters, to tell tokens apart in lists
    hash       TEXT NOT NULL UNIQUE,   -- SHA-256 of the token; the token itself is never stored
    created    REAL NOT NULL,
    last_used  REAL,
    revoked    REAL                    -- set: revoked since then (answers 401 at once)
);
CREATE TABLE IF NOT EXISTS api_secrets (
    user_id    TEXT PRIMARY KEY,       -- one webhook signing secret per merchant (webapp/api/webhooks.py)
    secret     TEXT NOT NULL,
    created    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_webhooks (
    job_id     TEXT PRIMARY KEY,       -- the job whose end is reported
    user_id    TEXT NOT NULL,
    url        TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'waiting',  -- waiting | delivered | gave_up
    attempts   INTEGER NOT NULL DEFAULT 0,
    updated    REAL NOT NULL
);
"""
#: Columns added after the first release: (table, column, declaration), added to older databases.
ADDED_COLUMNS = (
    ("models", "published_anyway", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "verdict", "TEXT NOT NULL DEFAULT ''"),
    # webapp/adjust.py: the merchant's correction as pipeline.Adjustment JSON ('' = as made), the viewer backdrop
    ("models", "adjustment", "TEXT NOT NULL DEFAULT ''"),
    ("models", "background", "TEXT NOT NULL DEFAULT ''"),
    ("models", "deleted_at", "REAL"),
    ("jobs", "photo_names", "TEXT NOT NULL DEFAULT '[]'"),
    ("jobs", "retried_as", "TEXT"),
    ("models", "product_url", "TEXT NOT NULL DEFAULT ''"),  # the shop's product page ("back to the product")
    ("models", "expires", "REAL"),  # unix time after which the share link answers "expired"; NULL: never
    # issue 15: whose model or job it is (users.id; '' = made before accounts, the owner's), and the
    # merchant-side id of a model (random, unrelated to its public share id)
    ("models", "owner", "TEXT NOT NULL DEFAULT ''"),
    ("models", "model_id", "TEXT"),
    ("jobs", "owner", "TEXT NOT NULL DEFAULT ''"),
    # issue 16: jobs run by `plinth worker` processes on other machines (webapp/jobqueue.py)
    ("jobs", "worker", "TEXT NOT NULL DEFAULT ''"),  # the worker's name while it runs the job ('' = in-process)
    ("jobs", "attempts", "INTEGER NOT NULL DEFAULT 0"),  # runs started; a job whose worker died may get one more
    ("jobs", "queue", "TEXT NOT NULL DEFAULT ''"),  # the RQ queue it was sent to ('gpu' | 'cpu'; '' = embedded)
)
