//! The audit trail's PostgreSQL writer, which both the register's
//! transactions ([`super::pg`]) and its migrations and copies
//! ([`super::pgschema`], [`super::copy`]) use: appending a row's entry, and
//! the failure type of a transaction that does.

use super::audit;
use super::journal::{JournalError, Millis};
use super::rows::{self, V};

/// A failure inside a transaction: the database's (maybe retryable) or a
/// journal refusal (final).
pub enum Fail {
    Pg(postgres::Error),
    J(JournalError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<JournalError> for Fail {
    fn from(e: JournalError) -> Fail {
        Fail::J(e)
    }
}

pub(crate) type F<T> = std::result::Result<T, Fail>;

/// Append the row `key` of `table`, as it is now, to the audit trail. The
/// head row is locked last thing before the commit, so concurrent stations
/// chain one after the other without forking the trail.
pub(crate) fn audit_row(
    t: &mut impl postgres::GenericClient,
    station: &str,
    operator: &str,
    at: Millis,
    table: &str,
    key: &[V],
) -> F<()> {
    let spec = rows::spec(table)
        .ok_or_else(|| Fail::J(JournalError::Refused(format!("no audited table {table}"))))?;
    let row = rows::pg_rows(t, spec, Some(key))?.into_iter().next();
    let h = t.query_one(
        "SELECT seq, sha256 FROM audit_head WHERE id = 1 FOR UPDATE",
        &[],
    )?;
    let e = audit::next(
        h.get(0),
        h.get(1),
        at,
        station,
        operator,
        table,
        audit::key_json(key),
        audit::row_json(spec, row.as_deref()),
    );
    t.execute(
        "INSERT INTO audit (seq, at, station, operator, tbl, row_key, row, prev_sha256, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &e.seq,
            &e.at,
            &e.station,
            &e.operator,
            &e.table,
            &e.row_key,
            &e.row,
            &e.prev_sha256,
            &e.sha256,
        ],
    )?;
    t.execute(
        "UPDATE audit_head SET seq = $1, sha256 = $2 WHERE id = 1",
        &[&e.seq, &e.sha256],
    )?;
    Ok(())
}
