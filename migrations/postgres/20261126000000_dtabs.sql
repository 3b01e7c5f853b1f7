-- Versioned dtab storage for namerd (PostgreSQL).
--
-- `dtabs` holds the current dtab of every present namespace; `dtab_history`
-- holds every committed version, deletions included, and is written in the
-- same transaction as `dtabs`. Versions are per-namespace counters from 1
-- that are never reused: a deletion takes the next version and a re-created
-- namespace continues after its highest history version, so an ETag from an
-- earlier life of a namespace can never match again.

CREATE TABLE dtabs (
    namespace  TEXT PRIMARY KEY,
    -- The dtab as `Dtab::show()` writes it.
    dtab       TEXT NOT NULL,
    version    BIGINT NOT NULL CHECK (version > 0),
    -- Unix milliseconds of the last write.
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);

CREATE TABLE dtab_history (
    namespace    TEXT NOT NULL,
    version      BIGINT NOT NULL CHECK (version > 0),
    op           TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    -- NULL exactly for deletions.
    dtab         TEXT,
    author       TEXT,
    -- Unix milliseconds.
    committed_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, version),
    CHECK ((op = 'delete') = (dtab IS NULL))
);
